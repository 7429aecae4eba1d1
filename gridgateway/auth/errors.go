package auth

import (
	"errors"
	"fmt"
)

// Kinds of authentication errors, for errors.Is. Each front door maps them once: the gRPC API to
// Unauthenticated and PermissionDenied, ARC REST to 401 and 403.
var (
	// ErrUnauthenticated: the caller did not prove who it is (no, malformed, expired or untrusted
	// credentials).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: the caller is known but may not do this (not mapped to a VO, scope missing).
	ErrPermissionDenied = errors.New("permission denied")
)

// Error is an authentication error: its message is for the client, its Kind one of ErrUnauthenticated and
// ErrPermissionDenied.
type Error struct {
	Kind error
	Msg  string
}

// Error implements error.
func (e *Error) Error() string { return e.Msg }

// Is reports whether target is the error's kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

func unauthenticated(format string, args ...any) error {
	return &Error{Kind: ErrUnauthenticated, Msg: fmt.Sprintf(format, args...)}
}

func permissionDenied(format string, args ...any) error {
	return &Error{Kind: ErrPermissionDenied, Msg: fmt.Sprintf(format, args...)}
}
