// Package stack stands in for github.com/moby/buildkit/util/stack in the differential
// harness. The Dockerfile parser uses it only to attach a stack trace to its errors
// (stack.Enable), which changes no parse; the real package would pull in protobuf and
// containerd/typeurl for that. This is berth's own code, not a copy.
package stack

// Enable returns err unchanged.
func Enable(err error) error { return err }
