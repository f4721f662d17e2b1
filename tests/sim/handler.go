// The SOAP front: wraps the simulator's /sdk handler to add what govmomi's
// simulator lacks (QueryChangedDiskAreas, changeIds, per-snapshot content),
// fault injection and session expiry. Everything else passes through.
package main

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

const sessionCookie = "vmware_soap_session"

type session struct {
	first time.Time
	calls int
	dead  bool
}

type front struct {
	cfg   *config
	inner http.Handler
	inv   *inventory
	cbt   *cbtState

	mu          sync.Mutex
	calls       map[string]int // method -> calls so far
	qcdaReplies int
	pages       map[string][]string // continuation token -> objects still to send
	nextToken   int
	sessions    map[string]*session
}

func newFront(cfg *config, inner http.Handler, inv *inventory) *front {
	return &front{cfg: cfg, inner: inner, inv: inv, cbt: newCBTState(cfg.blockSize),
		calls: map[string]int{}, sessions: map[string]*session{}, pages: map[string][]string{}}
}

const envelopeHead = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>`
const envelopeTail = `</soapenv:Body></soapenv:Envelope>`

func writeSOAP(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, envelopeHead+body+envelopeTail)
}

// faultXML renders a fault the way vCenter does: the name in <detail> and in
// xsi:type, with the few fields the product reads.
func faultXML(name, msg string, fields string) string {
	return fmt.Sprintf(`<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>%s</faultstring>`+
		`<detail><%sFault xmlns="urn:vim25" xsi:type="%s">%s</%sFault></detail></soapenv:Fault>`,
		html.EscapeString(msg), name, name, fields, name)
}

func writeFault(w http.ResponseWriter, name, msg, fields string) {
	writeSOAP(w, http.StatusInternalServerError, faultXML(name, msg, fields))
}

func invalidArgument(w http.ResponseWriter, prop string) {
	writeFault(w, "InvalidArgument", "A specified parameter was not correct: "+prop,
		"<invalidProperty>"+html.EscapeString(prop)+"</invalidProperty>")
}

func fileFault(w http.ResponseWriter, msg, file string) {
	writeFault(w, "FileFault", msg, "<file>"+html.EscapeString(file)+"</file>")
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/sdk/vimServiceVersions.xml") {
		if f.cfg.noVersions {
			http.NotFound(w, r)
		} else {
			f.serviceVersions(w)
		}
		return
	}
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/sdk") && f.unsupportedVersion(w, r) {
		return
	}
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/sdk") {
		f.inner.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if f.cfg.trace {
		log.Printf("request: %s", body)
	}
	method, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil {
		f.passThrough(w, r, body)
		return
	}
	if f.sessionExpired(w, r, method.Name) {
		return
	}
	if f.injectFault(w, method) {
		return
	}
	switch req := method.Body.(type) {
	case *types.QueryChangedDiskAreas:
		f.queryChangedDiskAreas(w, r, body, req)
	case *types.CreateSnapshot_Task:
		f.cbt.mu.Lock()
		defer f.cbt.mu.Unlock()
		f.passThrough(w, r, body)
		f.afterSnapshot(req.This)
	case *types.RemoveSnapshot_Task, *types.RemoveAllSnapshots_Task:
		f.cbt.mu.Lock()
		defer f.cbt.mu.Unlock()
		restore := f.protectLiveDisks()
		f.passThrough(w, r, body)
		restore()
		f.afterSnapshotRemoval()
	case *types.ReconfigVM_Task:
		f.cbt.mu.Lock()
		defer f.cbt.mu.Unlock()
		f.passThrough(w, r, body)
		f.afterReconfig(req.This)
	case *types.RetrievePropertiesEx:
		if f.cfg.maxObjects > 0 {
			f.pagedRetrieve(w, r, body)
			return
		}
		f.passThrough(w, r, body)
	case *types.ContinueRetrievePropertiesEx:
		if f.continueRetrieve(w, req.Token) {
			return
		}
		f.passThrough(w, r, body)
	case *types.ShutdownGuest:
		f.shutdownGuest(w, r, body, method.This)
	case *types.PowerOnVM_Task, *types.PowerOffVM_Task:
		f.passThrough(w, r, body)
		f.syncToolsState(method.This)
	default:
		f.passThrough(w, r, body)
	}
}

func (f *front) passThrough(w http.ResponseWriter, r *http.Request, body []byte) {
	rec := httptest.NewRecorder()
	f.forward(rec, r, body)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
	if f.cfg.trace {
		log.Printf("response: %s", rec.Body.String())
	}
}

func (f *front) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	f.inner.ServeHTTP(w, r2)
}

// sessionExpired models a vCenter session timeout: after the configured calls
// or seconds the session answers NotAuthenticated, and a fresh Login is needed.
func (f *front) sessionExpired(w http.ResponseWriter, r *http.Request, method string) bool {
	if f.cfg.expireCalls == 0 && f.cfg.expireSeconds == 0 {
		return false
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sessions[c.Value]
	if s == nil {
		s = &session{first: time.Now()}
		f.sessions[c.Value] = s
	}
	switch method {
	case "Login", "RetrieveServiceContent":
		if s.dead {
			// A new Login must not be confused by the old cookie.
			r.Header.Del("Cookie")
		}
		return false
	}
	s.calls++
	if (f.cfg.expireCalls > 0 && s.calls > f.cfg.expireCalls) ||
		(f.cfg.expireSeconds > 0 && time.Since(s.first) > time.Duration(f.cfg.expireSeconds)*time.Second) {
		s.dead = true
	}
	if s.dead {
		writeFault(w, "NotAuthenticated", "The session is not authenticated.",
			"<privilegeId>System.View</privilegeId>")
		return true
	}
	return false
}

func newFault(name string) types.BaseMethodFault {
	if t, ok := types.TypeFunc()(name); ok {
		if f, ok := reflect.New(t).Interface().(types.BaseMethodFault); ok {
			return f
		}
	}
	return &types.SystemError{Reason: "injected " + name}
}

// injectFault fails the Nth call of a method. Task methods fail the way vCenter
// fails them, through the task's error; "hang" leaves the task running forever.
func (f *front) injectFault(w http.ResponseWriter, m *simulator.Method) bool {
	f.mu.Lock()
	f.calls[m.Name]++
	n := f.calls[m.Name]
	f.mu.Unlock()
	for _, fs := range f.cfg.faults {
		if fs.method != m.Name || n < fs.nth || (!fs.from && n != fs.nth) {
			continue
		}
		log.Printf("injecting %s into call %d of %s", fs.fault, n, m.Name)
		if strings.HasPrefix(fs.fault, "http") {
			// A proxy or load balancer failing: an HTTP status with no SOAP body.
			code, _ := strconv.Atoi(strings.TrimPrefix(fs.fault, "http"))
			if code < 400 {
				code = 503
			}
			w.WriteHeader(code)
			return true
		}
		if strings.HasSuffix(m.Name, "_Task") {
			var task *simulator.Task
			if fs.fault == "hang" {
				task = simulator.CreateTask(m.This, m.Name, nil)
				simulator.Map.Update(task, []types.PropertyChange{
					{Name: "info.state", Val: types.TaskInfoStateRunning},
					{Name: "info.startTime", Val: time.Now()},
				})
			} else {
				fault := newFault(fs.fault)
				if ia, ok := fault.(*types.InvalidArgument); ok {
					ia.InvalidProperty = fs.prop
				}
				task = simulator.CreateTask(m.This, m.Name, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
					return nil, fault
				})
				task.Run()
			}
			writeSOAP(w, http.StatusOK, fmt.Sprintf(`<%sResponse xmlns="urn:vim25"><returnval type="Task">%s</returnval></%sResponse>`,
				m.Name, task.Self.Value, m.Name))
			return true
		}
		fields := ""
		if fs.prop != "" {
			fields = "<invalidProperty>" + html.EscapeString(fs.prop) + "</invalidProperty>"
		}
		writeFault(w, fs.fault, "injected fault "+fs.fault, fields)
		return true
	}
	return false
}

func vmByRef(ref types.ManagedObjectReference) *simulator.VirtualMachine {
	vm, _ := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	return vm
}

func flatBacking(d *types.VirtualDisk) *types.VirtualDiskFlatVer2BackingInfo {
	b, _ := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	return b
}

func diskCapacity(d *types.VirtualDisk) int64 {
	if d.CapacityInBytes > 0 {
		return d.CapacityInBytes
	}
	return d.CapacityInKB * 1024
}

func independent(mode string) bool { return strings.HasPrefix(mode, "independent") }

func (f *front) afterReconfig(ref types.ManagedObjectReference) {
	vm := vmByRef(ref)
	if vm == nil {
		return
	}
	simulator.Map.WithLock(vm, func() {
		on := vm.Config.ChangeTrackingEnabled != nil && *vm.Config.ChangeTrackingEnabled
		tracks := f.cbt.tracks[ref.Value]
		switch {
		case on && tracks == nil:
			tracks = map[int32]*diskTrack{}
			for _, dev := range vm.Config.Hardware.Device {
				if d, ok := dev.(*types.VirtualDisk); ok {
					if b := flatBacking(d); b != nil {
						t := &diskTrack{epoch: newEpoch(), seq: 1, records: map[int]*record{}}
						tracks[d.Key] = t
						b.ChangeId = t.changeID()
					}
				}
			}
			f.cbt.tracks[ref.Value] = tracks
		case !on && tracks != nil:
			delete(f.cbt.tracks, ref.Value)
			for _, dev := range vm.Config.Hardware.Device {
				if d, ok := dev.(*types.VirtualDisk); ok {
					if b := flatBacking(d); b != nil {
						b.ChangeId = ""
					}
				}
			}
		}
	})
}

// afterSnapshot freezes every disk of the new snapshot: a sparse copy of its
// data becomes the snapshot's backing, its changeId is frozen in a deep copy
// of the device, and a digest record is kept for later queries.
func (f *front) afterSnapshot(ref types.ManagedObjectReference) {
	vm := vmByRef(ref)
	if vm == nil {
		return
	}
	var snapRef types.ManagedObjectReference
	simulator.Map.WithLock(vm, func() {
		if vm.Snapshot != nil && vm.Snapshot.CurrentSnapshot != nil {
			snapRef = *vm.Snapshot.CurrentSnapshot
		}
	})
	if snapRef.Value == "" || f.cbt.snapshots[snapRef.Value] != nil {
		return
	}
	snap, ok := simulator.Map.Get(snapRef).(*simulator.VirtualMachineSnapshot)
	if !ok {
		return
	}
	frozen := map[int32]*snapshotDisk{}
	var devices []types.BaseVirtualDevice
	var failure error
	simulator.Map.WithLock(vm, func() {
		tracks := f.cbt.tracks[ref.Value]
		for _, dev := range vm.Config.Hardware.Device {
			d, ok := dev.(*types.VirtualDisk)
			b := (*types.VirtualDiskFlatVer2BackingInfo)(nil)
			if ok {
				b = flatBacking(d)
			}
			flat := f.inv.flatByVM[ref.Value][dev.GetVirtualDevice().Key]
			if b == nil || flat == "" || independent(b.DiskMode) {
				devices = append(devices, dev)
				continue
			}
			frozenFlat := frozenName(flat, snapRef.Value)
			rec, err := takeRecord(flat, diskCapacity(d), f.cbt.blockSize, frozenFlat, f.inv.thick[flat])
			if err != nil {
				failure = err
				devices = append(devices, dev)
				continue
			}
			descriptor := strings.TrimSuffix(frozenFlat, "-flat.vmdk") + ".vmdk"
			if err := writeDescriptor(descriptor, filepath.Base(frozenFlat), diskCapacity(d), true); err != nil {
				failure = err
			}
			var dp object.DatastorePath
			dp.FromString(b.FileName)
			dp.Path = filepath.Join(filepath.Dir(dp.Path), filepath.Base(descriptor))

			dcopy := *d
			bcopy := *b
			bcopy.FileName = dp.String()
			dcopy.Backing = &bcopy
			sd := &snapshotDisk{rec: rec, frozen: frozenFlat, frozenDescriptor: descriptor}
			if t := tracks[d.Key]; t != nil {
				sd.changeID = t.changeID()
				t.records[t.seq] = rec
				t.seq++
				b.ChangeId = t.changeID()
			}
			bcopy.ChangeId = sd.changeID
			frozen[d.Key] = sd
			devices = append(devices, &dcopy)
		}
	})
	if failure != nil {
		log.Printf("snapshot %s: freezing disks: %v", snapRef.Value, failure)
	}
	simulator.Map.WithLock(snap, func() {
		snap.Config.Hardware.Device = devices
	})
	f.cbt.snapshots[snapRef.Value] = frozen
}

// protectLiveDisks guards against a govmomi 0.24 simulator bug: snapshot
// removal deletes the files its layoutEx keys point at, and after a few
// snapshots those keys can point at a live disk's descriptor. Every live
// disk file is hard-linked first; the returned function puts back any that
// went missing.
func (f *front) protectLiveDisks() func() {
	var kept [][2]string
	for _, vm := range f.inv.vms {
		for _, d := range vm.Disks {
			for _, p := range []string{d.Descriptor, d.Flat} {
				if p == "" {
					continue
				}
				keep := p + ".v2k-keep"
				_ = os.Remove(keep)
				if os.Link(p, keep) == nil {
					kept = append(kept, [2]string{p, keep})
				}
			}
		}
	}
	return func() {
		for _, k := range kept {
			if _, err := os.Stat(k[0]); os.IsNotExist(err) {
				log.Printf("restoring %s, deleted by the simulator's snapshot removal", k[0])
				_ = os.Rename(k[1], k[0])
			} else {
				_ = os.Remove(k[1])
			}
		}
	}
}

func (f *front) afterSnapshotRemoval() {
	for ref, disks := range f.cbt.snapshots {
		if simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: ref}) != nil {
			continue
		}
		for _, sd := range disks {
			_ = os.Remove(sd.frozen)
			_ = os.Remove(sd.frozenDescriptor)
		}
		delete(f.cbt.snapshots, ref)
	}
}

// shutdownGuest answers as vSphere does: ToolsUnavailable when VMware Tools
// are not running in a powered-on guest; otherwise the guest powers off at
// once, after its --shutdown-delay, or never.
func (f *front) shutdownGuest(w http.ResponseWriter, r *http.Request, body []byte, ref types.ManagedObjectReference) {
	vm := vmByRef(ref)
	if vm == nil {
		f.passThrough(w, r, body)
		return
	}
	var on, tools bool
	simulator.Map.WithLock(vm, func() {
		on = vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn
		tools = vm.Guest.ToolsRunningStatus == string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
	})
	if on && !tools {
		writeFault(w, "ToolsUnavailable",
			"Cannot complete operation because VMware Tools is not running in this virtual machine.", "")
		return
	}
	spec := f.inv.specs[ref.Value]
	if !on || spec == nil || spec.shutdownDelay == 0 {
		f.passThrough(w, r, body)
		f.syncToolsState(ref)
		return
	}
	writeSOAP(w, http.StatusOK, `<ShutdownGuestResponse xmlns="urn:vim25"></ShutdownGuestResponse>`)
	if spec.shutdownDelay > 0 {
		go func() {
			time.Sleep(time.Duration(spec.shutdownDelay) * time.Second)
			simulator.Map.WithLock(vm, func() {
				if vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOff {
					return
				}
				vm.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOff
				vm.Summary.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOff
				simulator.Map.Update(vm, []types.PropertyChange{
					{Name: "runtime.powerState", Val: types.VirtualMachinePowerStatePoweredOff},
					{Name: "summary.runtime.powerState", Val: types.VirtualMachinePowerStatePoweredOff},
				})
			})
			f.syncToolsState(ref)
		}()
	}
}

// syncToolsState keeps guest.toolsRunningStatus in step with the power state,
// as a guest with VMware Tools installed would.
func (f *front) syncToolsState(ref types.ManagedObjectReference) {
	vm := vmByRef(ref)
	if vm == nil {
		return
	}
	simulator.Map.WithLock(vm, func() {
		if vm.Guest.ToolsStatus == types.VirtualMachineToolsStatusToolsNotInstalled {
			return
		}
		state := types.VirtualMachineToolsRunningStatusGuestToolsNotRunning
		if vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn {
			state = types.VirtualMachineToolsRunningStatusGuestToolsRunning
		}
		vm.Guest.ToolsRunningStatus = string(state)
		vm.Summary.Guest.ToolsRunningStatus = string(state)
	})
}

func (f *front) queryChangedDiskAreas(w http.ResponseWriter, r *http.Request, body []byte, req *types.QueryChangedDiskAreas) {
	// The simulator rejects the method it does not know only after it has
	// checked the session and the object, so let it do those checks.
	rec := httptest.NewRecorder()
	f.forward(rec, r, body)
	if out := rec.Body.String(); strings.Contains(out, "NotAuthenticated") || strings.Contains(out, "ManagedObjectNotFound") {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	vm := vmByRef(req.This)
	if vm == nil {
		writeFault(w, "ManagedObjectNotFound", "managed object not found: "+req.This.Value, "")
		return
	}
	f.cbt.mu.Lock()
	defer f.cbt.mu.Unlock()

	var (
		enabled   bool
		poweredOn bool
		vmx       string
		liveDisk  *types.VirtualDisk
	)
	simulator.Map.WithLock(vm, func() {
		enabled = vm.Config.ChangeTrackingEnabled != nil && *vm.Config.ChangeTrackingEnabled
		poweredOn = vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn
		vmx = vm.Config.Files.VmPathName
		for _, dev := range vm.Config.Hardware.Device {
			if d, ok := dev.(*types.VirtualDisk); ok && d.Key == req.DeviceKey {
				dcopy := *d
				liveDisk = &dcopy
			}
		}
	})
	track := f.cbt.tracks[req.This.Value][req.DeviceKey]
	if !enabled || track == nil {
		if liveDisk == nil {
			invalidArgument(w, "deviceKey")
			return
		}
		fileFault(w, "Change tracking is not enabled for this disk", vmx)
		return
	}

	var target *record
	var targetID string
	if req.Snapshot != nil {
		disks, ok := f.cbt.snapshots[req.Snapshot.Value]
		if !ok {
			writeFault(w, "ManagedObjectNotFound", "managed object not found: "+req.Snapshot.Value, "")
			return
		}
		sd := disks[req.DeviceKey]
		if sd == nil {
			invalidArgument(w, "deviceKey")
			return
		}
		if sd.changeID == "" {
			fileFault(w, "Change tracking was not active when the snapshot was taken", vmx)
			return
		}
		target, targetID = sd.rec, sd.changeID
	} else {
		if poweredOn {
			fileFault(w, "QueryChangedDiskAreas without a snapshot requires a powered-off VM", vmx)
			return
		}
		flat := f.inv.flatByVM[req.This.Value][req.DeviceKey]
		if liveDisk == nil || flat == "" {
			invalidArgument(w, "deviceKey")
			return
		}
		var err error
		if target, err = takeRecord(flat, diskCapacity(liveDisk), f.cbt.blockSize, "", f.inv.thick[flat]); err != nil {
			fileFault(w, err.Error(), vmx)
			return
		}
		targetID = track.changeID()
	}
	if req.StartOffset < 0 || req.StartOffset >= target.capacity {
		invalidArgument(w, "startOffset")
		return
	}
	var from *record
	if req.ChangeId != "*" {
		epoch, seq, ok := parseChangeID(req.ChangeId)
		tEpoch, tSeq, _ := parseChangeID(targetID)
		from = track.records[seq]
		if !ok || epoch != track.epoch || epoch != tEpoch || seq > tSeq || from == nil {
			invalidArgument(w, "changeId")
			return
		}
	}
	length, areas := page(changedBlocks(from, target), f.cbt.blockSize, target.capacity, req.StartOffset, f.cfg.maxAreas)
	start := req.StartOffset
	f.mu.Lock()
	f.qcdaReplies++
	n := f.qcdaReplies
	f.mu.Unlock()
	for _, c := range f.cfg.corrupt {
		if c.nth == n {
			start, length, areas = corruptPage(c.mode, start, length, areas, target.capacity)
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<QueryChangedDiskAreasResponse xmlns="urn:vim25"><returnval><startOffset>%d</startOffset><length>%d</length>`,
		start, length)
	for _, a := range areas {
		fmt.Fprintf(&sb, `<changedArea><start>%d</start><length>%d</length></changedArea>`, a.start, a.length)
	}
	sb.WriteString(`</returnval></QueryChangedDiskAreasResponse>`)
	writeSOAP(w, http.StatusOK, sb.String())
}

// corruptPage breaks a reply the way a buggy server or proxy might.
func corruptPage(mode string, start, length int64, areas []area, capacity int64) (int64, int64, []area) {
	switch mode {
	case "offset": // a reply that does not start where it was asked
		return start + 512, length - 512, areas
	case "zero":
		return start, 0, areas
	case "past": // a range beyond the disk
		return start, capacity - start + 65536, areas
	case "outside": // an area beyond the range examined
		return start, length, append(areas, area{start + length, 4096})
	case "overlap":
		if len(areas) > 0 {
			a := areas[len(areas)-1]
			return start, length, append(areas, area{a.start, a.length})
		}
		return start, length, []area{{start, 4096}, {start, 4096}}
	case "unsorted":
		if len(areas) > 1 {
			areas[0], areas[1] = areas[1], areas[0]
			return start, length, areas
		}
		return start, length, []area{{start + 8192, 4096}, {start, 4096}}
	}
	return start, length, areas
}

// splitObjects cuts the <objects> elements out of a RetrievePropertiesEx reply.
func splitObjects(xml string) (head string, objs []string, tail string) {
	first := strings.Index(xml, "<objects>")
	if first < 0 {
		return xml, nil, ""
	}
	head = xml[:first]
	rest := xml[first:]
	for strings.HasPrefix(rest, "<objects>") {
		depth, i := 0, 0
		for {
			open := strings.Index(rest[i:], "<objects>")
			end := strings.Index(rest[i:], "</objects>")
			if open >= 0 && open < end {
				depth++
				i += open + len("<objects>")
				continue
			}
			depth--
			i += end + len("</objects>")
			if depth == 0 {
				break
			}
		}
		objs = append(objs, rest[:i])
		rest = rest[i:]
	}
	return head, objs, rest
}

// pagedRetrieve serves RetrievePropertiesEx at most --max-objects objects at a
// time with a continuation token, as vCenter does for large results.
func (f *front) pagedRetrieve(w http.ResponseWriter, r *http.Request, body []byte) {
	rec := httptest.NewRecorder()
	f.forward(rec, r, body)
	out := rec.Body.String()
	head, objs, tail := splitObjects(out)
	if rec.Code != http.StatusOK || len(objs) <= f.cfg.maxObjects {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	token := f.storePage(objs[f.cfg.maxObjects:])
	page := head + strings.Join(objs[:f.cfg.maxObjects], "") + "<token>" + token + "</token>" + tail
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, page)
}

func (f *front) storePage(objs []string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextToken++
	token := fmt.Sprintf("v2k-page-%d", f.nextToken)
	f.pages[token] = objs
	return token
}

func (f *front) continueRetrieve(w http.ResponseWriter, token string) bool {
	f.mu.Lock()
	objs, ok := f.pages[token]
	delete(f.pages, token)
	f.mu.Unlock()
	if !ok {
		return false
	}
	n := f.cfg.maxObjects
	if n > len(objs) {
		n = len(objs)
	}
	var sb strings.Builder
	sb.WriteString(`<ContinueRetrievePropertiesExResponse xmlns="urn:vim25"><returnval>`)
	sb.WriteString(strings.Join(objs[:n], ""))
	if n < len(objs) {
		sb.WriteString("<token>" + f.storePage(objs[n:]) + "</token>")
	}
	sb.WriteString(`</returnval></ContinueRetrievePropertiesExResponse>`)
	writeSOAP(w, http.StatusOK, sb.String())
	return true
}

// serviceVersions answers /sdk/vimServiceVersions.xml as the simulated
// release does: its version and the older ones it speaks.
func (f *front) serviceVersions(w http.ResponseWriter) {
	var prior strings.Builder
	for _, v := range apiVersions[f.cfg.apiVersion].prior {
		fmt.Fprintf(&prior, "   <version>%s</version>\n", v)
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8" ?>
<namespaces version="1.0">
 <namespace>
  <name>urn:vim25</name>
  <version>%s</version>
  <priorVersions>
%s  </priorVersions>
 </namespace>
</namespaces>
`, f.cfg.apiVersion, prior.String())
}

// unsupportedVersion refuses a SOAPAction newer than the simulated release,
// with the fault ESXi and vCenter answer.
func (f *front) unsupportedVersion(w http.ResponseWriter, r *http.Request) bool {
	action := strings.Trim(r.Header.Get("SOAPAction"), `"`)
	v := strings.TrimPrefix(action, "urn:vim25/")
	if v == action || !versionNewer(v, f.cfg.apiVersion) {
		return false
	}
	_, _ = io.Copy(io.Discard, r.Body)
	writeSOAP(w, http.StatusInternalServerError, fmt.Sprintf(
		`<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Request version '%s' and namespace 'urn:vim25' are not supported</faultstring></soapenv:Fault>`,
		html.EscapeString(action)))
	return true
}
