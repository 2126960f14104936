package form_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/form"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
)

func save(t *testing.T, d *db.DB, v *form.Versions, f *form.Form) (string, error) {
	t.Helper()
	var id string
	err := d.InTx(context.Background(), func(tx *db.Tx) error {
		var err error
		id, err = v.SaveTx(context.Background(), tx, f)
		return err
	})
	return id, err
}

func TestVersions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clock := func() time.Time { return now }
		v1 := geti(t)

		store := form.NewVersions(d, clock)
		id1, err := save(t, d, store, v1)
		if err != nil {
			t.Fatal(err)
		}

		// Idempotent by hash: the same declaration, even laid out differently, is one row.
		var generic map[string]any
		_ = json.Unmarshal([]byte(getiJSON), &generic)
		relaid, _ := json.MarshalIndent(generic, "", "  ")
		same, err := form.Parse(relaid)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := save(t, d, store, same); err != nil || again != id1 {
			t.Fatalf("saving the same declaration again: %s, %v; want %s", again, err, id1)
		}

		// A new version is a new row; the old one is untouched and still read as it was.
		v2, err := form.Parse([]byte(strings.Replace(strings.Replace(getiJSON, `"version": 1`, `"version": 2`, 1),
			`"max_length": 50`, `"max_length": 20`, 1)))
		if err != nil {
			t.Fatal(err)
		}
		id2, err := save(t, d, store, v2)
		if err != nil || id2 == id1 {
			t.Fatalf("version 2: %s, %v", id2, err)
		}

		// The same key and version with other content is refused, inside a transaction
		// that stays usable on PostgreSQL (no failed statement).
		changed, err := form.Parse([]byte(strings.Replace(getiJSON, `"max_length": 50`, `"max_length": 40`, 1)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = save(t, d, store, changed)
		if !errors.Is(err, form.ErrVersionConflict) {
			t.Fatalf("changed v1 saved: %v", err)
		}
		if e, _ := i18n.As(err); e.HTTPStatus() != 409 {
			t.Errorf("status %d", e.HTTPStatus())
		}

		// A fresh store (another node, or after restart) reads the rows, not a cache.
		other := form.NewVersions(d, clock)
		for id, want := range map[string]*form.Form{id1: v1, id2: v2} {
			got, err := other.Get(ctx, id)
			if err != nil {
				t.Fatalf("get %s: %v", id, err)
			}
			if got.Hash() != want.Hash() || got.Version != want.Version {
				t.Errorf("get %s: version %d hash %s, want %d %s", id, got.Version, got.Hash(), want.Version, want.Hash())
			}
		}
		old, _ := other.Get(ctx, id1)
		if _, errs := old.ValidateWith(form.Values{"name": strings.Repeat("名", 30), "id_number": idNumber, "phone": "13803511234",
			"has_shop": "no", "capital": "1", "agree": "true"}, opts); len(errs) != 0 {
			t.Errorf("an application on v1 is read with v1's rules: %v", errs)
		}
		id, latest, err := other.Latest(ctx, "geti-register")
		if err != nil || id != id2 || latest.Version != 2 {
			t.Fatalf("latest: %s %v", id, err)
		}
		if _, errs := latest.ValidateWith(form.Values{"name": strings.Repeat("名", 30)}, opts); errs[0].Code != "form.too_long" {
			t.Errorf("v2's shorter name limit not applied: %v", errs)
		}
		if _, err := other.Get(ctx, db.NewID()); !errors.Is(err, i18n.ErrNotFound) {
			t.Errorf("unknown id: %v", err)
		}
		if _, _, err := other.Latest(ctx, "nope"); !errors.Is(err, i18n.ErrNotFound) {
			t.Errorf("unknown key: %v", err)
		}

		var created time.Time
		if err := d.QueryRow(ctx, `SELECT created_at FROM form_versions WHERE id = ?`, id1).Scan(&created); err != nil || !created.Equal(now) {
			t.Errorf("created_at %v %v, want the injected clock %v", created, err, now)
		}

		// A row edited behind the store's back is detected, not served.
		if _, err := d.Exec(ctx, `UPDATE form_versions SET declaration = ? WHERE id = ?`, string(changed.Canonical()), id2); err != nil {
			t.Fatal(err)
		}
		if _, err := form.NewVersions(d, clock).Get(ctx, id2); err == nil || !strings.Contains(err.Error(), "altered") {
			t.Errorf("altered row served: %v", err)
		}
	}, form.Migrations)
}

// A rolled-back save leaves nothing behind, not even in the cache.
func TestVersionsRollback(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		store := form.NewVersions(d, nil)
		var id string
		boom := errors.New("boom")
		err := d.InTx(ctx, func(tx *db.Tx) error {
			var err error
			if id, err = store.SaveTx(ctx, tx, geti(t)); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if _, err := store.Get(ctx, id); !errors.Is(err, i18n.ErrNotFound) {
			t.Errorf("rolled-back form found: %v", err)
		}
	}, form.Migrations)
}

// Nodes loading the same pack at once all end with the one row and the same id.
func TestVersionsConcurrentSave(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := geti(t)
		ids := make(chan string, 4)
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				id, err := save(t, d, form.NewVersions(d, nil), f)
				ids <- id
				errs <- err
			}()
		}
		first := ""
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
			id := <-ids
			if first == "" {
				first = id
			}
			if id != first {
				t.Errorf("ids %s and %s for one declaration", first, id)
			}
		}
		var n int
		if err := d.QueryRow(context.Background(), `SELECT COUNT(*) FROM form_versions`).Scan(&n); err != nil || n != 1 {
			t.Errorf("%d rows (%v)", n, err)
		}
	}, form.Migrations)
}
