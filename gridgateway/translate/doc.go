// Package translate turns a pilot's job description into kubehtc objects: Validate checks a description
// against the site configuration and produces the GridJob's translated description; Pod builds the Pod of
// a GridJob; StateFromPod maps the Pod's status back to an ARC REST state.
//
// The package is pure code over API types: no client, no server. The gateway calls Translate when a job is
// submitted (so that bad input is refused before anything is created), the GridJob controller calls Pod
// and StateFromPod.
package translate
