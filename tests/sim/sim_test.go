// The simulator's own tests: they start the real v2k-vcsim binary and talk raw
// SOAP to it over verified TLS, so they prove exactly what the product sees.
package main

import (
	"bytes"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

type sim struct {
	t      *testing.T
	cmd    *exec.Cmd
	info   info
	client *http.Client
	dir    string
	// The ServiceContent's morefs differ between vCenter and ESXi; request
	// bodies name the vCenter ones and callWith maps them.
	refs map[string]string
	// The SOAPAction of every call: the simulated release's own version.
	action string
}

func simBinary(t *testing.T) string {
	if p := os.Getenv("V2K_VCSIM"); p != "" {
		return p
	}
	t.Fatal("V2K_VCSIM must name the built v2k-vcsim binary")
	return ""
}

func startSim(t *testing.T, args ...string) *sim {
	dir := t.TempDir()
	infoFile := filepath.Join(dir, "info.json")
	cmd := exec.Command(simBinary(t), append([]string{"--info", infoFile}, args...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &sim{t: t, cmd: cmd, dir: dir, action: "urn:vim25/7.0"}
	for i, a := range args {
		if a == "--api-version" && i+1 < len(args) {
			s.action = "urn:vim25/" + args[i+1]
		}
	}
	t.Cleanup(s.stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, err := os.ReadFile(infoFile)
		if err == nil {
			if err := json.Unmarshal(data, &s.info); err != nil {
				t.Fatalf("info file: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("simulator did not write its info file")
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.client = s.newClient(true)
	sc := s.call(`<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>`)
	s.refs = map[string]string{}
	for _, kind := range []string{"SessionManager", "PropertyCollector"} {
		m := regexp.MustCompile(`type="` + kind + `">([^<]+)<`).FindStringSubmatch(sc)
		if m == nil {
			t.Fatalf("no %s in the service content", kind)
		}
		s.refs[kind] = m[1]
	}
	return s
}

func (s *sim) newClient(trustCert bool) *http.Client {
	pool := x509.NewCertPool()
	if trustCert {
		pem, err := os.ReadFile(s.info.CertFile)
		if err != nil {
			s.t.Fatal(err)
		}
		pool.AppendCertsFromPEM(pem)
	}
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func (s *sim) stop() {
	if s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
}

const reqHead = `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>`
const reqTail = `</soapenv:Body></soapenv:Envelope>`

func (s *sim) callWith(c *http.Client, body string) (int, string) {
	if s.refs != nil {
		body = strings.ReplaceAll(body, `type="SessionManager">SessionManager<`, `type="SessionManager">`+s.refs["SessionManager"]+`<`)
		body = strings.ReplaceAll(body, `type="PropertyCollector">propertyCollector<`, `type="PropertyCollector">`+s.refs["PropertyCollector"]+`<`)
	}
	req, _ := http.NewRequest("POST", s.info.SDK, strings.NewReader(reqHead+body+reqTail))
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", s.action)
	resp, err := c.Do(req)
	if err != nil {
		s.t.Fatalf("SOAP call: %v", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func (s *sim) call(body string) string {
	s.t.Helper()
	code, out := s.callWith(s.client, body)
	if code != 200 {
		s.t.Fatalf("call failed (%d): %s\nrequest: %s", code, out, body)
	}
	return out
}

func (s *sim) fault(body string) string {
	s.t.Helper()
	code, out := s.callWith(s.client, body)
	if code != 500 {
		s.t.Fatalf("expected a fault, got %d: %s", code, out)
	}
	m := regexp.MustCompile(`xsi:type="([A-Za-z]+)"`).FindStringSubmatch(out)
	if m == nil {
		s.t.Fatalf("fault without a type: %s", out)
	}
	return m[1]
}

func (s *sim) login() {
	s.call(fmt.Sprintf(`<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>%s</userName><password>%s</password></Login>`,
		s.info.User, s.info.Password))
}

func vmRef(vm string) string { return `<_this type="VirtualMachine">` + vm + `</_this>` }

func (s *sim) waitTask(out string) string {
	s.t.Helper()
	m := regexp.MustCompile(`type="Task">([^<]+)<`).FindStringSubmatch(out)
	if m == nil {
		s.t.Fatalf("no task in %s", out)
	}
	info := s.call(`<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>Task</type><pathSet>info</pathSet></propSet><objectSet><obj type="Task">` +
		m[1] + `</obj></objectSet></specSet><options></options></RetrievePropertiesEx>`)
	return info
}

func (s *sim) setCBT(vm string, on bool) {
	s.t.Helper()
	info := s.waitTask(s.call(`<ReconfigVM_Task xmlns="urn:vim25">` + vmRef(vm) +
		`<spec><changeTrackingEnabled>` + strconv.FormatBool(on) + `</changeTrackingEnabled></spec></ReconfigVM_Task>`))
	if !strings.Contains(info, "<state>success</state>") {
		s.t.Fatalf("reconfig failed: %s", info)
	}
}

func (s *sim) snapshot(vm, name string) string {
	s.t.Helper()
	info := s.waitTask(s.call(`<CreateSnapshot_Task xmlns="urn:vim25">` + vmRef(vm) + `<name>` + name +
		`</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>`))
	m := regexp.MustCompile(`type="VirtualMachineSnapshot">([^<]+)<`).FindStringSubmatch(info)
	if m == nil {
		s.t.Fatalf("snapshot failed: %s", info)
	}
	return m[1]
}

// snapshotChangeID reads the changeId frozen in a snapshot's own config.
func (s *sim) snapshotChangeID(snap string, key int32) string {
	out := s.call(`<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>VirtualMachineSnapshot</type><pathSet>config.hardware.device</pathSet></propSet><objectSet><obj type="VirtualMachineSnapshot">` +
		snap + `</obj></objectSet></specSet><options></options></RetrievePropertiesEx>`)
	re := regexp.MustCompile(`<key>` + strconv.Itoa(int(key)) + `</key>.*?<changeId>([^<]*)</changeId>`)
	m := re.FindStringSubmatch(out)
	if m == nil {
		s.t.Fatalf("no changeId for disk %d in %s", key, out)
	}
	return m[1]
}

type qarea struct{ start, length int64 }

var (
	reStart  = regexp.MustCompile(`<returnval><startOffset>(\d+)</startOffset><length>(\d+)</length>`)
	reAreaRe = regexp.MustCompile(`<changedArea><start>(\d+)</start><length>(\d+)</length></changedArea>`)
)

func qcdaBody(vm, snap string, key int32, off int64, changeID string) string {
	snapXML := ""
	if snap != "" {
		snapXML = `<snapshot type="VirtualMachineSnapshot">` + snap + `</snapshot>`
	}
	return fmt.Sprintf(`<QueryChangedDiskAreas xmlns="urn:vim25">%s%s<deviceKey>%d</deviceKey><startOffset>%d</startOffset><changeId>%s</changeId></QueryChangedDiskAreas>`,
		vmRef(vm), snapXML, key, off, changeID)
}

// queryAll pages from offset 0 to the capacity, checking each page's shape.
func (s *sim) queryAll(vm, snap string, key int32, changeID string, capacity int64) ([]qarea, int) {
	s.t.Helper()
	var all []qarea
	off := int64(0)
	pages := 0
	for off < capacity {
		out := s.call(qcdaBody(vm, snap, key, off, changeID))
		pages++
		m := reStart.FindStringSubmatch(out)
		if m == nil {
			s.t.Fatalf("bad reply %s", out)
		}
		start, _ := strconv.ParseInt(m[1], 10, 64)
		length, _ := strconv.ParseInt(m[2], 10, 64)
		if start != off || length <= 0 {
			s.t.Fatalf("page %d: start %d length %d, want start %d", pages, start, length, off)
		}
		for _, a := range reAreaRe.FindAllStringSubmatch(out, -1) {
			st, _ := strconv.ParseInt(a[1], 10, 64)
			ln, _ := strconv.ParseInt(a[2], 10, 64)
			if st < off || st+ln > off+length {
				s.t.Fatalf("area [%d,+%d) outside page [%d,+%d)", st, ln, off, length)
			}
			all = append(all, qarea{st, ln})
		}
		off += length
	}
	if off != capacity {
		s.t.Fatalf("pages end at %d, capacity %d", off, capacity)
	}
	return all, pages
}

func writeAt(t *testing.T, path string, off int64, data []byte) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

func fill(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

const kib = 1024
const mib = 1024 * 1024

func TestTLSAndThumbprints(t *testing.T) {
	s := startSim(t)
	der, _ := os.ReadFile(s.info.CertFile)
	_ = der
	conn, err := tls.Dial("tcp", strings.TrimPrefix(s.info.URL, "https://"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	cert := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if cert.PublicKey.(interface{ Size() int }).Size() < 256 {
		t.Fatal("certificate key is weaker than RSA-2048")
	}
	sum := sha1.Sum(cert.Raw)
	if thumbprint(sum[:]) != s.info.ThumbprintSHA1 {
		t.Fatalf("sha1 thumbprint %s != served %s", s.info.ThumbprintSHA1, thumbprint(sum[:]))
	}
	// Verified against its own certificate: works. Against the system store: refused.
	s.login()
	req, _ := http.NewRequest("POST", s.info.SDK, strings.NewReader(reqHead+`<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>`+reqTail))
	_, err = (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{}}}).Do(req)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate accepted: %v", err)
	}
}

func TestFixedLogin(t *testing.T) {
	s := startSim(t, "--user", "admin@vsphere.local", "--password", "s3cret")
	if s.info.User != "admin@vsphere.local" || s.info.Password != "s3cret" {
		t.Fatalf("info user/password: %q %q", s.info.User, s.info.Password)
	}
	f := s.fault(`<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>admin@vsphere.local</userName><password>wrong</password></Login>`)
	if f != "InvalidLogin" {
		t.Fatalf("wrong password gave %s", f)
	}
	s.login()
}

func TestVMDescription(t *testing.T) {
	s := startSim(t, "--vm", "mixed", "--disk", "scsi:8M", "--disk", "sata:4M:thick",
		"--disk", "ide:4M", "--disk", "nvme:4M", "--nic", "VM Network", "--nic", "Backup LAN:e1000e",
		"--firmware", "efi", "--secure-boot", "--vtpm", "--guest-id", "ubuntu64Guest", "--cpus", "4",
		"--cores-per-socket", "2", "--memory", "4096", "--power", "on",
		"--vm", "indep", "--disk", "scsi:4M:independent_persistent")
	if len(s.info.VMs) != 2 {
		t.Fatalf("vms: %+v", s.info.VMs)
	}
	vm := s.info.VMs[0]
	want := []struct {
		key  int32
		ctrl string
	}{{2000, "pvscsi"}, {2001, "sata"}, {2002, "ide"}, {2003, "nvme"}}
	for i, w := range want {
		d := vm.Disks[i]
		if d.Key != w.key || d.Controller != w.ctrl {
			t.Fatalf("disk %d: %+v", i, d)
		}
		st, err := os.Stat(d.Flat)
		if err != nil || st.Size() != d.Capacity {
			t.Fatalf("flat %s: %v size %d", d.Flat, err, st.Size())
		}
		desc, _ := os.ReadFile(d.Descriptor)
		if !strings.Contains(string(desc), fmt.Sprintf("RW %d VMFS", d.Capacity/512)) {
			t.Fatalf("descriptor: %s", desc)
		}
	}
	// The thick disk is allocated, the thin one is not.
	var st syscall.Stat_t
	_ = syscall.Stat(vm.Disks[0].Flat, &st)
	if st.Blocks != 0 {
		t.Fatalf("thin disk has %d blocks", st.Blocks)
	}
	_ = syscall.Stat(vm.Disks[1].Flat, &st)
	if st.Blocks*512 < vm.Disks[1].Capacity {
		t.Fatalf("thick disk has only %d blocks", st.Blocks)
	}
	if len(vm.NICs) != 2 || vm.NICs[1].Network != "Backup LAN" || vm.NICs[1].Model != "e1000e" {
		t.Fatalf("nics: %+v", vm.NICs)
	}
	s.login()
	out := s.call(`<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>VirtualMachine</type><pathSet>config</pathSet><pathSet>runtime.powerState</pathSet></propSet><objectSet><obj type="VirtualMachine">` +
		vm.Moref + `</obj></objectSet></specSet><options></options></RetrievePropertiesEx>`)
	for _, want := range []string{"<firmware>efi</firmware>", "<efiSecureBootEnabled>true</efiSecureBootEnabled>",
		`type="VirtualTPM"`, "<numCPU>4</numCPU>", "<numCoresPerSocket>2</numCoresPerSocket>",
		"<memoryMB>4096</memoryMB>", "<guestId>ubuntu64Guest</guestId>", "poweredOn",
		"<label>Hard disk 1</label>", "<label>Network adapter 2</label>",
		`type="ParaVirtualSCSIController"`, `type="VirtualAHCIController"`, `type="VirtualNVMEController"`,
		`type="VirtualE1000e"`, "<macAddress>" + vm.NICs[0].MAC + "</macAddress>"} {
		if !strings.Contains(out, want) {
			t.Errorf("config lacks %s", want)
		}
	}
	if !strings.Contains(s.call(`<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>VirtualMachine</type><pathSet>config.hardware.device</pathSet></propSet><objectSet><obj type="VirtualMachine">`+
		s.info.VMs[1].Moref+`</obj></objectSet></specSet><options></options></RetrievePropertiesEx>`), "<diskMode>independent_persistent</diskMode>") {
		t.Error("independent disk mode not reported")
	}
}

// TestCBTModel writes data, snapshots, and checks each answer against the
// blocks that were really written.
func TestCBTModel(t *testing.T) {
	s := startSim(t, "--vm", "cbt", "--disk", "scsi:8M", "--power", "on")
	vm := s.info.VMs[0]
	d := vm.Disks[0]
	s.login()

	// CBT off: a FileFault.
	snap0 := s.snapshot(vm.Moref, "before-cbt")
	if f := s.fault(qcdaBody(vm.Moref, snap0, d.Key, 0, "*")); f != "FileFault" {
		t.Fatalf("CBT off gave %s", f)
	}
	writeAt(t, d.Flat, 0, fill(100*kib, 0xa1))   // blocks 0-1
	writeAt(t, d.Flat, 3*mib+10, fill(10, 0xb2)) // block 48
	writeAt(t, d.Flat, 5*mib, fill(64*kib, 0))   // allocated zeros, block 80
	s.setCBT(vm.Moref, true)
	base := s.snapshot(vm.Moref, "base")
	baseID := s.snapshotChangeID(base, d.Key)
	if !regexp.MustCompile(`^52( [0-9a-f]{2}){7}-[0-9a-f]{2}( [0-9a-f]{2}){7}/\d+$`).MatchString(baseID) {
		t.Fatalf("changeId format: %q", baseID)
	}
	areas, _ := s.queryAll(vm.Moref, base, d.Key, "*", d.Capacity)
	want := []qarea{{0, 128 * kib}, {3 * mib, 64 * kib}, {5 * mib, 64 * kib}}
	if fmt.Sprint(areas) != fmt.Sprint(want) {
		t.Fatalf("'*' areas %v, want %v", areas, want)
	}
	// The snapshot froze its content: later writes do not reach its backing.
	writeAt(t, d.Flat, 7*mib, fill(4*kib, 0xc3)) // new block 112
	writeAt(t, d.Flat, 0, fill(100*kib, 0xa1))   // same content: no change
	writeAt(t, d.Flat, 3*mib, fill(64*kib, 0))   // data to zeros: a change
	writeAt(t, d.Flat, 6*mib-1, fill(2, 0xd4))   // straddles blocks 95 and 96
	incr := s.snapshot(vm.Moref, "incr")
	incrID := s.snapshotChangeID(incr, d.Key)
	if incrID == baseID || strings.Split(incrID, "/")[0] != strings.Split(baseID, "/")[0] {
		t.Fatalf("changeIds %s then %s", baseID, incrID)
	}
	areas, _ = s.queryAll(vm.Moref, incr, d.Key, baseID, d.Capacity)
	want = []qarea{{3 * mib, 64 * kib}, {6*mib - 64*kib, 128 * kib}, {7 * mib, 64 * kib}}
	if fmt.Sprint(areas) != fmt.Sprint(want) {
		t.Fatalf("delta areas %v, want %v", areas, want)
	}
	// No change since the last snapshot: no areas, one page to the end.
	final := s.snapshot(vm.Moref, "final")
	areas, pages := s.queryAll(vm.Moref, final, d.Key, incrID, d.Capacity)
	if len(areas) != 0 || pages != 1 {
		t.Fatalf("unchanged disk: %v in %d pages", areas, pages)
	}
	// Without a snapshot: refused while powered on, answered when off.
	if f := s.fault(qcdaBody(vm.Moref, "", d.Key, 0, incrID)); f != "FileFault" {
		t.Fatalf("no snapshot while on gave %s", f)
	}
	s.waitTask(s.call(`<PowerOffVM_Task xmlns="urn:vim25">` + vmRef(vm.Moref) + `</PowerOffVM_Task>`))
	writeAt(t, d.Flat, 2*mib, fill(kib, 0xe5))
	areas, _ = s.queryAll(vm.Moref, "", d.Key, s.snapshotChangeID(final, d.Key), d.Capacity)
	if fmt.Sprint(areas) != fmt.Sprint([]qarea{{2 * mib, 64 * kib}}) {
		t.Fatalf("powered-off areas %v", areas)
	}
	// Bad changeIds and offsets.
	if f := s.fault(qcdaBody(vm.Moref, incr, d.Key, 0, "52 00 00 00 00 00 00 00-00 00 00 00 00 00 00 00/1")); f != "InvalidArgument" {
		t.Fatalf("foreign changeId gave %s", f)
	}
	if f := s.fault(qcdaBody(vm.Moref, incr, d.Key, 0, "garbage")); f != "InvalidArgument" {
		t.Fatalf("garbage changeId gave %s", f)
	}
	if f := s.fault(qcdaBody(vm.Moref, base, d.Key, 0, incrID)); f != "InvalidArgument" {
		t.Fatalf("changeId newer than the snapshot gave %s", f)
	}
	if f := s.fault(qcdaBody(vm.Moref, incr, d.Key, d.Capacity, "*")); f != "InvalidArgument" {
		t.Fatalf("offset at capacity gave %s", f)
	}
	if f := s.fault(qcdaBody(vm.Moref, incr, 9999, 0, "*")); f != "InvalidArgument" {
		t.Fatalf("unknown disk gave %s", f)
	}
	// Removing a snapshot deletes its frozen copy, and its changeId stays usable.
	s.waitTask(s.call(`<RemoveSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachineSnapshot">` + base +
		`</_this><removeChildren>false</removeChildren><consolidate>true</consolidate></RemoveSnapshot_Task>`))
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(d.Flat), "*-"+base+"-flat.vmdk"))
	if len(matches) != 0 {
		t.Fatalf("frozen copy left behind: %v", matches)
	}
	areas, _ = s.queryAll(vm.Moref, final, d.Key, baseID, d.Capacity)
	if len(areas) != 3 {
		t.Fatalf("areas since the removed base: %v", areas)
	}
}

func TestSnapshotBackingIsFrozen(t *testing.T) {
	s := startSim(t, "--vm", "f", "--disk", "scsi:2M")
	d := s.info.VMs[0].Disks[0]
	s.login()
	writeAt(t, d.Flat, 0, fill(4*kib, 0x11))
	snap := s.snapshot(s.info.VMs[0].Moref, "s")
	writeAt(t, d.Flat, 0, fill(4*kib, 0x22))
	out := s.call(`<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>VirtualMachineSnapshot</type><pathSet>config.hardware.device</pathSet></propSet><objectSet><obj type="VirtualMachineSnapshot">` +
		snap + `</obj></objectSet></specSet><options></options></RetrievePropertiesEx>`)
	m := regexp.MustCompile(`<fileName>\[LocalDS_0\] ([^<]+)</fileName>`).FindStringSubmatch(out)
	if m == nil || m[1] == "f/f.vmdk" {
		t.Fatalf("snapshot backing: %v", m)
	}
	flat := filepath.Join(s.info.Datastores["LocalDS_0"], strings.TrimSuffix(m[1], ".vmdk")+"-flat.vmdk")
	data, err := os.ReadFile(flat)
	if err != nil || data[0] != 0x11 || int64(len(data)) != d.Capacity {
		t.Fatalf("frozen data: %v", err)
	}
}

func TestPaging(t *testing.T) {
	for _, per := range []int{1, 7} {
		t.Run(fmt.Sprintf("per%d", per), func(t *testing.T) {
			s := startSim(t, "--max-areas", strconv.Itoa(per), "--cbt-block-size", "4096",
				"--vm", "p", "--disk", "scsi:8M")
			vm := s.info.VMs[0]
			d := vm.Disks[0]
			s.login()
			s.setCBT(vm.Moref, true)
			base := s.snapshot(vm.Moref, "base")
			var want []qarea
			for i := int64(0); i < 300; i++ {
				off := i * 3 * 4096 * 2 // every other 3-block stride: separate areas
				writeAt(t, d.Flat, off+5, []byte{byte(i%255 + 1)})
				want = append(want, qarea{off, 4096})
			}
			incr := s.snapshot(vm.Moref, "incr")
			areas, pages := s.queryAll(vm.Moref, incr, d.Key, s.snapshotChangeID(base, d.Key), d.Capacity)
			if fmt.Sprint(areas) != fmt.Sprint(want) {
				t.Fatalf("got %d areas, want %d", len(areas), len(want))
			}
			if min := (len(want) + per - 1) / per; pages < min {
				t.Fatalf("%d pages for %d areas at %d per reply", pages, len(want), per)
			}
			star, _ := s.queryAll(vm.Moref, incr, d.Key, "*", d.Capacity)
			if fmt.Sprint(star) != fmt.Sprint(want) {
				t.Fatalf("'*' gave %d areas", len(star))
			}
		})
	}
}

func TestEpochReset(t *testing.T) {
	s := startSim(t, "--vm", "r", "--disk", "scsi:2M")
	vm := s.info.VMs[0]
	d := vm.Disks[0]
	s.login()
	s.setCBT(vm.Moref, true)
	base := s.snapshot(vm.Moref, "base")
	oldID := s.snapshotChangeID(base, d.Key)
	s.setCBT(vm.Moref, false)
	s.setCBT(vm.Moref, true)
	incr := s.snapshot(vm.Moref, "incr")
	newID := s.snapshotChangeID(incr, d.Key)
	if strings.Split(oldID, "/")[0] == strings.Split(newID, "/")[0] {
		t.Fatalf("reset kept the epoch: %s %s", oldID, newID)
	}
	out := s.fault(qcdaBody(vm.Moref, incr, d.Key, 0, oldID))
	if out != "InvalidArgument" {
		t.Fatalf("old-epoch changeId gave %s", out)
	}
	_, body := s.callWith(s.client, qcdaBody(vm.Moref, incr, d.Key, 0, oldID))
	if !strings.Contains(body, "<invalidProperty>changeId</invalidProperty>") {
		t.Fatalf("fault does not name changeId: %s", body)
	}
}

func TestInjectedFaults(t *testing.T) {
	s := startSim(t, "--fault", "QueryChangedDiskAreas:2:InvalidArgument:changeId",
		"--fault", "CreateSnapshot_Task:2:SnapshotFault", "--fault", "RemoveSnapshot_Task:1:hang",
		"--vm", "x", "--disk", "scsi:2M")
	vm := s.info.VMs[0]
	d := vm.Disks[0]
	s.login()
	s.setCBT(vm.Moref, true)
	snap := s.snapshot(vm.Moref, "one")
	s.call(qcdaBody(vm.Moref, snap, d.Key, 0, "*"))
	if f := s.fault(qcdaBody(vm.Moref, snap, d.Key, 0, "*")); f != "InvalidArgument" {
		t.Fatalf("2nd call gave %s", f)
	}
	s.call(qcdaBody(vm.Moref, snap, d.Key, 0, "*"))
	info := s.waitTask(s.call(`<CreateSnapshot_Task xmlns="urn:vim25">` + vmRef(vm.Moref) +
		`<name>two</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>`))
	if !strings.Contains(info, "<state>error</state>") || !strings.Contains(info, "SnapshotFault") {
		t.Fatalf("task fault: %s", info)
	}
	info = s.waitTask(s.call(`<RemoveSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachineSnapshot">` + snap +
		`</_this><removeChildren>false</removeChildren></RemoveSnapshot_Task>`))
	if !strings.Contains(info, "<state>running</state>") {
		t.Fatalf("hung task: %s", info)
	}
}

func TestSessionExpiry(t *testing.T) {
	s := startSim(t, "--expire-session-calls", "2")
	s.login()
	rsc := `<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet></propSet><objectSet><obj type="VirtualMachine">` +
		s.info.VMs[0].Moref + `</obj></objectSet></specSet><options></options></RetrievePropertiesEx>`
	s.call(rsc)
	s.call(rsc)
	if f := s.fault(rsc); f != "NotAuthenticated" {
		t.Fatalf("expired session gave %s", f)
	}
	s.login()
	s.call(rsc)
}

func TestCleanStop(t *testing.T) {
	s := startSim(t)
	ds := s.info.Datastores["LocalDS_0"]
	if _, err := os.Stat(ds); err != nil {
		t.Fatal(err)
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	for _, p := range []string{ds, filepath.Dir(s.info.CertFile), filepath.Join(s.dir, "info.json")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind", p)
		}
	}
}

func TestESXModel(t *testing.T) {
	s := startSim(t, "--model", "esx", "--vm", "e1", "--disk", "scsi:4M")
	out := s.call(`<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>`)
	if !strings.Contains(out, "<apiType>HostAgent</apiType>") {
		t.Fatalf("esx model is not a host agent: %s", out)
	}
	if s.info.VMs[0].Path != "ha-datacenter/vm/e1" {
		t.Fatalf("path %s", s.info.VMs[0].Path)
	}
	s.login()
	s.setCBT(s.info.VMs[0].Moref, true)
	snap := s.snapshot(s.info.VMs[0].Moref, "base")
	s.queryAll(s.info.VMs[0].Moref, snap, 2000, "*", 4*mib)
}

// A simulated 6.0 lists its versions as ESXi 6.0 does, reports them in the
// ServiceContent, and refuses a newer SOAPAction with ESXi's fault.
func TestAPIVersions(t *testing.T) {
	s := startSim(t, "--api-version", "6.0")
	resp, err := s.client.Get(strings.TrimSuffix(s.info.SDK, "/sdk") + "/sdk/vimServiceVersions.xml")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<name>urn:vim25</name>\n  <version>6.0</version>") ||
		!strings.Contains(string(body), "<version>5.5</version>") || strings.Contains(string(body), "<version>6.5</version>") {
		t.Fatalf("vimServiceVersions.xml (%d): %s", resp.StatusCode, body)
	}
	sc := s.call(`<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>`)
	if !strings.Contains(sc, "<apiVersion>6.0</apiVersion>") || !strings.Contains(sc, "<version>6.0.0</version>") {
		t.Fatalf("the ServiceContent does not say 6.0: %s", sc)
	}
	s.action = "urn:vim25/6.5"
	code, out := s.callWith(s.client, `<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>`)
	if code != 500 || !strings.Contains(out, "Request version 'urn:vim25/6.5' and namespace 'urn:vim25' are not supported") {
		t.Fatalf("a newer SOAPAction was not refused (%d): %s", code, out)
	}
	s.action = "urn:vim25/5.5"
	s.call(`<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>`)

	n := startSim(t, "--no-service-versions")
	resp, err = n.client.Get(strings.TrimSuffix(n.info.SDK, "/sdk") + "/sdk/vimServiceVersions.xml")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("--no-service-versions served the file (%d)", resp.StatusCode)
	}
}
