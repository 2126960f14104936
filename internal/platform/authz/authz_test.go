package authz

import (
	"errors"
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// prefixContains nests by code prefix as GB/T 2260 does (province 2 digits, city 4, county 6).
func prefixContains(outer, inner string) bool {
	switch {
	case strings.HasSuffix(outer, "0000"):
		return strings.HasPrefix(inner, outer[:2])
	case strings.HasSuffix(outer, "00"):
		return strings.HasPrefix(inner, outer[:4])
	default:
		return strings.HasPrefix(inner, outer)
	}
}

func TestScopeAndRoles(t *testing.T) {
	p := NewPolicy(prefixContains)
	province := Subject{Kind: Staff, ID: "p", Division: "140000", Roles: []Role{RoleOrgAdmin}}
	taiyuan := Subject{Kind: Staff, ID: "c", Division: "140100", Roles: []Role{RoleOrgAdmin}}
	xiaodian := Subject{Kind: Staff, ID: "x", Division: "140105", Roles: []Role{RoleOrgAdmin}}
	auditor := Subject{Kind: Staff, ID: "a", Division: "140000", Roles: []Role{RoleAuditor}}
	citizen := Subject{Kind: Citizen, ID: "z", Division: "140105"}
	cases := []struct {
		name string
		s    Subject
		perm Permission
		div  string
		want bool
	}{
		{"province edits a county", province, StaffEdit, "140105", true},
		{"city edits its county", taiyuan, StaffEdit, "140105", true},
		{"city edits itself", taiyuan, StaffEdit, "140100", true},
		{"city cannot edit another city", taiyuan, StaffEdit, "140200", false},
		{"city cannot edit the province", taiyuan, StaffEdit, "140000", false},
		{"county edits itself", xiaodian, StaffEdit, "140105", true},
		{"county cannot edit its neighbour", xiaodian, StaffEdit, "140106", false},
		{"county cannot edit its city", xiaodian, StaffEdit, "140100", false},
		{"auditor reads the log", auditor, AuditRead, "140000", true},
		{"auditor cannot edit staff", auditor, StaffEdit, "140105", false},
		{"org admin cannot verify audit", province, AuditVerify, "140000", false},
		{"citizen gets no staff permission", citizen, OrgRead, "140105", false},
		{"no division denies", Subject{Kind: Staff, Roles: []Role{RoleSysAdmin}}, OrgRead, "140000", false},
		{"unknown permission denies", province, Permission("x.y"), "140000", false},
		{"empty record division denies", province, OrgRead, "", false},
	}
	for _, c := range cases {
		if got := p.Allowed(c.s, c.perm, c.div); got != c.want {
			t.Errorf("%s: got %v", c.name, got)
		}
	}
	if err := p.Authorize(Subject{}, OrgRead, "140000"); !errors.Is(err, i18n.ErrUnauthorized) {
		t.Errorf("anonymous: %v", err)
	}
	if err := p.Authorize(taiyuan, StaffEdit, "140200"); !errors.Is(err, i18n.ErrForbidden) {
		t.Errorf("out of scope: %v", err)
	}
}

func TestOwner(t *testing.T) {
	me := Subject{Kind: Citizen, ID: "1"}
	if Owner(me, Citizen, "1") != nil {
		t.Error("own record denied")
	}
	if Owner(me, Citizen, "2") == nil || Owner(me, Enterprise, "1") == nil || Owner(Subject{}, Citizen, "1") == nil {
		t.Error("foreign record allowed")
	}
}
