package demo

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/license"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/seal"
	"github.com/dgov/dgov/packs"
)

// The trusted-services demo (issue 6): every department of a kind whose Shanxi pack items end
// in an e-licence (营业执照, 食品经营许可证, 居住证, 结婚证 …) is registered as an issuing
// authority and gets an official seal (公章), so that its officers can issue licences, signed
// with the seal's key, at once. The provincial organisation administrator (sx-admin) does both,
// as the rules require: seal.PermManage and license.PermAdmin over the whole province.
//
// The credit codes are SYNTHETIC demo values, not the departments' real codes. They follow
// GB 32100-2015 for a government organ (登记管理部门 1 机构编制, 机构类别 1 机关) registered in
// the department's division, with an organisation-code body of "DG" (dgov demo), the kind's
// number in org.DepartmentKinds and "0000", and both check characters computed: valid, unique
// per division and kind, and recognisable as the demo's.

// trustAdmin makes the seals and registers the issuers.
const trustAdmin = "sx-admin"

// TrustDeps are the services LoadTrust writes through.
type TrustDeps struct {
	Org      *org.Service
	Seals    *seal.Service
	Licenses *license.Service
}

// TrustSummary reports what LoadTrust did.
type TrustSummary struct {
	Departments int // departments that issue licences
	Issuers     int // registered now
	Seals       int // official seals made now
}

// LoadTrust registers the issuing departments and makes their official seals. A department
// already registered, or with an official seal in force, is left as it is, so calling it
// again changes nothing. It needs the organisation of Load.
func LoadTrust(ctx context.Context, deps TrustDeps) (TrustSummary, error) {
	var sum TrustSummary
	pack, err := govservice.LoadPack(packs.Shanxi())
	if err != nil {
		return sum, fmt.Errorf("demo: Shanxi pack: %w", err)
	}
	kinds := licenseKinds(pack)
	admin, err := staffSubject(ctx, deps.Org, trustAdmin)
	if err != nil {
		return sum, err
	}
	depts, err := deps.Org.ListDepartments(ctx, reader, org.DepartmentFilter{ActiveOnly: true, Limit: 1000})
	if err != nil {
		return sum, fmt.Errorf("demo: departments: %w", err)
	}
	sort.Slice(depts, func(i, j int) bool {
		if depts[i].DivisionCode != depts[j].DivisionCode {
			return depts[i].DivisionCode < depts[j].DivisionCode
		}
		return depts[i].Code < depts[j].Code
	})
	for _, d := range depts {
		if !kinds[d.Code] {
			continue
		}
		sum.Departments++
		switch _, err := deps.Licenses.GetIssuer(ctx, d.ID); {
		case errors.Is(err, license.ErrNotIssuer):
			code, err := demoCreditCode(d)
			if err != nil {
				return sum, err
			}
			if _, err := deps.Licenses.RegisterIssuer(ctx, admin, license.Issuer{DeptID: d.ID, Name: d.Name, CreditCode: code,
				Division: d.DivisionCode, Kind: d.Kind, Active: true}); err != nil {
				return sum, fmt.Errorf("demo: register issuer %s: %w", d.Name, err)
			}
			sum.Issuers++
		case err != nil:
			return sum, fmt.Errorf("demo: issuer %s: %w", d.Name, err)
		}
		switch _, err := deps.Seals.Current(ctx, admin, d.ID, ""); {
		case errors.Is(err, seal.ErrNoSeal):
			if _, err := deps.Seals.Create(ctx, admin, seal.CreateInput{DeptID: d.ID}); err != nil {
				return sum, fmt.Errorf("demo: seal of %s: %w", d.Name, err)
			}
			sum.Seals++
		case err != nil:
			return sum, fmt.Errorf("demo: seal of %s: %w", d.Name, err)
		}
	}
	return sum, nil
}

// licenseKinds are the department kinds (org.DepartmentKinds codes) whose pack items issue an
// e-licence as their result.
func licenseKinds(p govservice.Pack) map[string]bool {
	out := map[string]bool{}
	for _, it := range p.Items {
		if it.Result.LicenseType != "" {
			out[it.Department] = true
		}
	}
	return out
}

// demoCreditCode is department d's SYNTHETIC unified social credit code (see above).
func demoCreditCode(d org.Department) (string, error) {
	kind := -1
	for i, k := range org.DepartmentKinds {
		if k.Code == d.Code {
			kind = i + 1
		}
	}
	if kind < 0 {
		return "", fmt.Errorf("demo: department %s has no standard kind", d.Name)
	}
	code, err := ids.MakeCreditCode('1', '1', d.DivisionCode, fmt.Sprintf("DG%02d0000", kind))
	if err != nil {
		return "", fmt.Errorf("demo: credit code of %s: %w", d.Name, err)
	}
	return code, nil
}
