package jobs

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

// Kinds of errors, for errors.Is; transport-neutral. Each front door maps them to its codes in one place
// (grpcapi: a gRPC status code; arcrest: an HTTP status).
var (
	// ErrInvalid: the request is malformed (a description, a client key, a job id, a credential). The same
	// value as translate.ErrInvalid, so description errors are of this kind too.
	ErrInvalid = translate.ErrInvalid
	// ErrForbidden: the caller may not do this (another VO's or owner's job, a queue the VO may not use). The
	// same value as translate.ErrForbidden.
	ErrForbidden = translate.ErrForbidden
	// ErrNotFound: no such job (or no such input file).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a client key reused for another description, or an object that already exists.
	ErrConflict = errors.New("conflict")
	// ErrConcurrentUpdate: the object changed while the request updated it; a retry may succeed.
	ErrConcurrentUpdate = errors.New("concurrent update")
	// ErrFailedPrecondition: the job or the site is not in a state that allows the request (cleaning a job
	// that runs, uploading inputs to a started job, a VO namespace that does not exist).
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrInternal: an inconsistency the caller cannot cure (a job name taken by another submission).
	ErrInternal = errors.New("internal error")
	// ErrUnavailable: the Kubernetes API failed in a way a retry may cure.
	ErrUnavailable = errors.New("unavailable")
)

// Error is an error of this package: Msg is for the client (unchanged by the kind), Kind one of the Err*
// values above, Err the cause if any (an API server error).
type Error struct {
	Kind error
	Msg  string
	Err  error
}

// Error implements error.
func (e *Error) Error() string { return e.Msg }

// Is reports whether target is the error's kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// apiError gives an API server error its kind; errors a retry may cure are ErrUnavailable.
func apiError(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	kind := ErrUnavailable
	msg := "kubernetes API: " + err.Error()
	switch {
	case apierrors.IsNotFound(err):
		kind, msg = ErrNotFound, err.Error()
	case apierrors.IsConflict(err):
		kind, msg = ErrConcurrentUpdate, err.Error()
	case apierrors.IsAlreadyExists(err):
		kind, msg = ErrConflict, err.Error()
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		kind, msg = ErrInvalid, err.Error()
	case apierrors.IsForbidden(err):
		kind, msg = ErrForbidden, err.Error()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// Kept as they are: errors.Is(err, context.Canceled) still answers.
		return err
	}
	return &Error{Kind: kind, Msg: msg, Err: err}
}
