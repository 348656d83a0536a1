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
	"sync/atomic"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
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

var updateVersion int64

func waitProxyFor(target types.ManagedObjectReference) types.ManagedObjectReference {
	return standIn(waitProxyType, target, func(self types.ManagedObjectReference) mo.Reference {
		return &waitProxy{Self: self, target: target}
	})
}

// collector finds the PropertyCollector for a call of method as the simulator's dispatch would:
// the session's own objects first (each session has its own default collector), then the global
// registry; and names it as ctx.Caller. A fault when there is none, or when -no-wait-for-updates
// turned the method off.
func (p *waitProxy) collector(ctx *simulator.Context, method string) (*simulator.PropertyCollector, *soap.Fault) {
	if !cfg.waitForUpdates {
		return nil, notImplemented(p.target, method)
	}
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
		return nil, notImplemented(p.target, method)
	}
	ctx.Caller = &p.target
	return pc, nil
}

func nextUpdateVersion() string {
	return strconv.FormatInt(atomic.AddInt64(&updateVersion, 1), 10)
}

func (p *waitProxy) WaitForUpdatesEx(ctx *simulator.Context, req *types.WaitForUpdatesEx) soap.HasFault {
	pc, fault := p.collector(ctx, "WaitForUpdatesEx")
	if fault != nil {
		return &methods.WaitForUpdatesExBody{Fault_: fault}
	}
	req.This = p.target
	res := pc.WaitForUpdatesEx(ctx, req)
	if b, ok := res.(*methods.WaitForUpdatesExBody); ok && b.Res != nil && b.Res.Returnval != nil {
		b.Res.Returnval.Version = nextUpdateVersion()
	}
	return res
}

func (p *waitProxy) WaitForUpdates(ctx *simulator.Context, req *types.WaitForUpdates) soap.HasFault {
	pc, fault := p.collector(ctx, "WaitForUpdates")
	if fault != nil {
		return &methods.WaitForUpdatesBody{Fault_: fault}
	}
	req.This = p.target
	res := pc.WaitForUpdates(ctx, req)
	if b, ok := res.(*methods.WaitForUpdatesBody); ok && b.Res != nil {
		b.Res.Returnval.Version = nextUpdateVersion()
	}
	return res
}
