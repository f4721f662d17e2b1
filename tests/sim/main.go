// v2k-vcsim: a vCenter (or ESXi) simulator for ablestack-v2k's tests, built
// on govmomi's simulator with Changed Block Tracking modelled on disk content.
// See README.md in this directory for its flags and the info file.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/simulator/esx"
	"github.com/vmware/govmomi/simulator/vpx"
	"github.com/vmware/govmomi/vim25/types"
)

type info struct {
	URL              string            `json:"url"`
	SDK              string            `json:"sdk"`
	CertFile         string            `json:"cert_file"`
	ThumbprintSHA1   string            `json:"thumbprint_sha1"`
	ThumbprintSHA256 string            `json:"thumbprint_sha256"`
	User             string            `json:"user"`
	Password         string            `json:"password"`
	Model            string            `json:"model"`
	Datastores       map[string]string `json:"datastores"`
	Host             string            `json:"host"`
	VMs              []vmInfo          `json:"vms"`
	CBTBlockSize     int64             `json:"cbt_block_size"`
	MaxAreas         int               `json:"max_areas"`
	APIVersion       string            `json:"api_version"`
	HostThumbprint   string            `json:"host_thumbprint_sha1"`
	PID              int               `json:"pid"`
}

func thumbprint(sum []byte) string {
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// notBefore and notAfter give a certificate valid for a year from now, or
// (--cert-expired) one that expired yesterday.
func notBefore(expired bool) time.Time {
	if expired {
		return time.Now().Add(-30 * 24 * time.Hour)
	}
	return time.Now().Add(-time.Hour)
}

func notAfter(expired bool) time.Time {
	if expired {
		return time.Now().Add(-24 * time.Hour)
	}
	return time.Now().Add(365 * 24 * time.Hour)
}

// makeCertificate creates a self-signed RSA-2048 certificate for loopback:
// Debian 12's OpenSSL rejects the simulator's built-in RSA-1024 one.
func makeCertificate(dir string, expired bool) (tls.Certificate, string, []byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return tls.Certificate{}, "", nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"ablestack-v2k test vCenter"}},
		NotBefore:             notBefore(expired),
		NotAfter:              notAfter(expired),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	certFile := filepath.Join(dir, "vcsim-cert.pem")
	if err := os.WriteFile(certFile, certPEM, 0644); err != nil {
		return tls.Certificate{}, "", nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	return pair, certFile, der, err
}

func writeInfoAtomically(path string, v *info) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func run(cfg *config) error {
	if !cfg.trace {
		log.SetOutput(io.Discard)
	}
	certDir, err := os.MkdirTemp("", "v2k-vcsim-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(certDir)

	rel := apiVersions[cfg.apiVersion]
	for _, sc := range []*types.ServiceContent{&esx.ServiceContent, &vpx.ServiceContent} {
		sc.About.ApiVersion = cfg.apiVersion
		sc.About.Version = rel.version
	}
	vpx.ServiceContent.About.FullName = "VMware vCenter Server " + rel.version + " build-0 (simulated)"
	esx.ServiceContent.About.FullName = "VMware ESXi " + rel.version + " build-0 (simulated)"
	var model *simulator.Model
	if cfg.model == "esx" {
		model = simulator.ESX()
	} else {
		model = simulator.VPX()
		model.Cluster = 0 // one standalone host keeps placement unambiguous
		model.ClusterHost = 0
	}
	model.Machine = 0
	model.Autostart = false
	if err := model.Create(); err != nil {
		return err
	}
	defer model.Remove()

	pair, certFile, der, err := makeCertificate(certDir, cfg.certExpired)
	if err != nil {
		return err
	}
	sha1sum := sha1.Sum(der)
	sha256sum := sha256.Sum256(der)
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	listen := &url.URL{Host: cfg.listen}
	user, password := "user", "pass"
	if cfg.user != "" || cfg.password != "" {
		user, password = cfg.user, cfg.password
		listen.User = url.UserPassword(user, password)
	}
	model.Service.Listen = listen
	server := model.Service.NewServer()
	defer server.Close()

	// An ESXi serves its own certificate; under a vCenter each host has one
	// of its own, which is not the vCenter's.
	hostThumbprint := thumbprint(sha1sum[:])
	for _, ref := range simulator.Map.All("HostSystem") {
		host := ref.(*simulator.HostSystem)
		simulator.Map.WithLock(host, func() {
			if cfg.model != "esx" {
				sum := sha1.Sum([]byte("host certificate of " + host.Name))
				hostThumbprint = thumbprint(sum[:])
			}
			host.Summary.Config.SslThumbprint = hostThumbprint
		})
	}

	ctx := context.Background()
	u := *server.URL
	u.User = url.UserPassword(user, password)
	client, err := govmomi.NewClient(ctx, &u, true)
	if err != nil {
		return fmt.Errorf("connecting to the simulator: %v", err)
	}
	inv, err := buildInventory(ctx, client.Client, cfg.vms)
	_ = client.Logout(ctx)
	if err != nil {
		return err
	}
	server.Config.Handler = newFront(cfg, server.Config.Handler, inv)

	hostName := ""
	if h, ok := simulator.Map.Get(inv.hostRef).(*simulator.HostSystem); ok {
		hostName = h.Name
	}
	base := *server.URL
	base.User = nil
	out := &info{
		URL:              "https://" + base.Host,
		SDK:              base.String(),
		CertFile:         certFile,
		ThumbprintSHA1:   thumbprint(sha1sum[:]),
		ThumbprintSHA256: thumbprint(sha256sum[:]),
		User:             user,
		Password:         password,
		Model:            cfg.model,
		Datastores:       inv.dsDirs,
		Host:             hostName,
		VMs:              inv.vms,
		CBTBlockSize:     cfg.blockSize,
		MaxAreas:         cfg.maxAreas,
		APIVersion:       cfg.apiVersion,
		HostThumbprint:   hostThumbprint,
		PID:              os.Getpid(),
	}
	if err := writeInfoAtomically(cfg.infoFile, out); err != nil {
		return err
	}
	defer os.Remove(cfg.infoFile)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return nil
}

func main() {
	cfg, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "v2k-vcsim: %v\n", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "v2k-vcsim: %v\n", err)
		os.Exit(1)
	}
}
