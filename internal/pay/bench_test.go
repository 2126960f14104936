package pay_test

import (
	"bytes"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/dgov/dgov/internal/pay"
	"github.com/dgov/dgov/internal/pay/paysim"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

// BenchmarkCallback measures payment callbacks processed per second end to end: a signed
// notification POSTed over HTTP to the callback handler, which verifies the SM2 signature,
// records the transaction once, moves the order to paid, issues and signs the electronic
// receipt, appends the audit entry and the event — one transaction per callback. Every
// iteration pays a different order (prepared before the timer starts), so nothing is a
// duplicate. "serial" posts one at a time; "parallel" posts from GOMAXPROCS×4 clients.
//
//	go test -run '^$' -bench BenchmarkCallback -benchtime 2000x ./internal/pay/
func BenchmarkCallback(b *testing.B) {
	for _, tc := range []struct {
		name string
		open func(testing.TB) *db.DB
	}{
		{"sqlite", func(tb testing.TB) *db.DB { return dbtest.SQLite(tb, sources...) }},
		{"postgres", func(tb testing.TB) *db.DB { return dbtest.Postgres(tb, sources...) }},
	} {
		for _, mode := range []string{"direct", "serial", "parallel"} {
			b.Run(tc.name+"/"+mode, func(b *testing.B) {
				f := newFixture(b, tc.open(b), fixtureOptions{manual: true})
				notes := make([]paysim.Notification, b.N)
				for i := range notes {
					o := f.order(1000 + int64(i%100))
					f.start(o)
					if _, err := f.sim.Pay(o.Code); err != nil {
						b.Fatal(err)
					}
				}
				copy(notes, f.sim.Pending())
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
				send := func(n paysim.Notification) {
					req, _ := http.NewRequest(http.MethodPost, n.URL, bytes.NewReader(n.Body))
					req.Header = n.Header.Clone()
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
					}
				}
				b.ResetTimer()
				if mode == "direct" {
					for i := 0; i < b.N; i++ {
						if _, err := f.svc.HandleNotification(f.ctx, f.sim.Name(), notes[i].Header, notes[i].Body); err != nil {
							b.Fatal(err)
						}
					}
				} else if mode == "serial" {
					for i := 0; i < b.N; i++ {
						send(notes[i])
					}
				} else {
					var next atomic.Int64
					b.SetParallelism(4)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							send(notes[next.Add(1)-1])
						}
					})
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "callbacks/s")
				if n := f.count(`SELECT COUNT(*) FROM pay_orders WHERE status = ?`, string(pay.StatusPaid)); n != b.N {
					b.Fatalf("%d orders paid, want %d", n, b.N)
				}
			})
		}
	}
}
