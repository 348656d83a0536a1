package main

// WaitForUpdatesEx and WaitForUpdates, routed through a stand-in (see front.go).
//
// The simulator's PropertyCollector implements both, but every UpdateSet it returns carries the
// version the client sent ("-" after the first call), where a vCenter hands out a new version
// with each set (vSphere Web Services API, UpdateSet.version: pass it to the next call). The
// stand-in calls the simulator's method and then gives each non-empty result a version of its
// own, from one counter: opaque, and different every time, which is all a client may assume.
//
// With -no-wait-for-updates both methods answer the fault MethodNotFound, what the simulator
// itself says for a method an object lacks (simulator/simulator.go, Service.call) and the vim25
// fault type for it (vim25/types/types.go, MethodNotFound: receiver, method), so that a client's
// fallback to polling RetrievePropertiesEx can be tested.

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

const waitProxyType = "SneakernetWaitProxy"

// waitProxy stands in for one PropertyCollector reference. Its Lock and Unlock do nothing: a
// wait blocks for as long as the client asks, and the simulator takes the handler's lock around
// the call, so a real lock would make every other wait on the same reference (the default
// collector of every session has the same one) queue behind it. The PropertyCollector itself
// opts out of that locking in the same way.
type waitProxy struct {
	Self   types.ManagedObjectReference
	target types.ManagedObjectReference
}

func (p *waitProxy) Reference() types.ManagedObjectReference { return p.Self }
func (p *waitProxy) Lock()                                   {}
func (p *waitProxy) Unlock()                                 {}

var (
	waitProxyMu   sync.Mutex
	updateVersion int64
)

func waitProxyFor(target types.ManagedObjectReference) types.ManagedObjectReference {
	ref := types.ManagedObjectReference{Type: waitProxyType, Value: target.Type + ":" + target.Value}
	waitProxyMu.Lock()
	defer waitProxyMu.Unlock()
	if simulator.Map.Get(ref) == nil {
		simulator.Map.Put(&waitProxy{Self: ref, target: target})
	}
	return ref
}

// collector finds the PropertyCollector as the simulator's dispatch would: the session's own
// objects first (each session has its own default collector), then the global registry.
func (p *waitProxy) collector(ctx *simulator.Context) (*simulator.PropertyCollector, *soap.Fault) {
	var obj interface{}
	if ctx.Session != nil {
		obj = ctx.Session.Get(p.target)
	}
	if obj == nil {
		obj = simulator.Map.Get(p.target)
	}
	if obj == nil {
		return nil, notFound(p.target)
	}
	pc, ok := obj.(*simulator.PropertyCollector)
	if !ok {
		return nil, notImplemented(p.target, "WaitForUpdatesEx")
	}
	return pc, nil
}

func nextUpdateVersion() string {
	return strconv.FormatInt(atomic.AddInt64(&updateVersion, 1), 10)
}

func (p *waitProxy) WaitForUpdatesEx(ctx *simulator.Context, req *types.WaitForUpdatesEx) soap.HasFault {
	body := new(methods.WaitForUpdatesExBody)
	if !cfg.waitForUpdates {
		body.Fault_ = notImplemented(p.target, "WaitForUpdatesEx")
		return body
	}
	pc, fault := p.collector(ctx)
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	req.This = p.target
	ctx.Caller = &p.target
	res := pc.WaitForUpdatesEx(ctx, req)
	if b, ok := res.(*methods.WaitForUpdatesExBody); ok && b.Res != nil && b.Res.Returnval != nil {
		b.Res.Returnval.Version = nextUpdateVersion()
	}
	return res
}

func (p *waitProxy) WaitForUpdates(ctx *simulator.Context, req *types.WaitForUpdates) soap.HasFault {
	body := new(methods.WaitForUpdatesBody)
	if !cfg.waitForUpdates {
		body.Fault_ = notImplemented(p.target, "WaitForUpdates")
		return body
	}
	pc, fault := p.collector(ctx)
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	req.This = p.target
	ctx.Caller = &p.target
	res := pc.WaitForUpdates(ctx, req)
	if b, ok := res.(*methods.WaitForUpdatesBody); ok && b.Res != nil {
		b.Res.Returnval.Version = nextUpdateVersion()
	}
	return res
}
