package org

// Verifications reports how many Argon2 verifications the service has run.
func (s *Service) Verifications() int64 { return s.verifications.Load() }

var LockDuration = lockDuration
