package exchange

import (
	"context"
	"fmt"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Request returns one sharing request to the staff of its consumer or provider department (or
// holders of PermRead over either's division), with Overdue computed.
func (s *Service) Request(ctx context.Context, actor authz.Subject, id string) (SharingRequest, error) {
	if err := staffOnly(actor); err != nil {
		return SharingRequest{}, err
	}
	r, err := getRequest(ctx, s.d, id)
	if isNoRow(err) {
		return SharingRequest{}, i18n.ErrNotFound
	}
	if err != nil {
		return SharingRequest{}, fmt.Errorf("read request %s: %w", id, err)
	}
	if s.mayReadDept(ctx, actor, r.ConsumerDeptID) != nil {
		if err := s.mayReadDept(ctx, actor, r.ProviderDeptID); err != nil {
			return SharingRequest{}, err
		}
	}
	return s.withOverdue(r), nil
}
