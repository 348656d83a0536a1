package main

// Disk content and the self-signed TLS certificate.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io"
	"math/big"
	mrand "math/rand"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var sizePattern = regexp.MustCompile(`^(?i)\s*(\d+)\s*(b|k|kib|m|mib|g|gib)?\s*$`)

// parseSize reads "4194304", "512KiB", "4MiB", "1G"... Every suffix is binary (1024-based): disk
// sizes in vSphere are counted in KiB, and a decimal "MB" would produce capacities that are not
// whole KiB.
func parseSize(s string) (int64, error) {
	m := sizePattern.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("not a size: %q (want e.g. 4MiB, 512KiB, 1048576)", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, err
	}
	switch strings.ToLower(m[2]) {
	case "k", "kib":
		n <<= 10
	case "m", "mib":
		n <<= 20
	case "g", "gib":
		n <<= 30
	}
	if n <= 0 {
		return 0, fmt.Errorf("size must be positive: %q", s)
	}
	return n, nil
}

// diskSeed derives a per-disk seed so that every disk of every VM differs, while a given
// (-seed, VM name, disk number) always gives the same bytes.
func diskSeed(vmName string, disk int) int64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s/%d", cfg.seed, vmName, disk)
	return int64(h.Sum64() & (1<<63 - 1))
}

const contentBlock = 64 << 10

// writeDiskContent (re)creates path with size bytes of the configured kind:
//
//	random  – seeded pseudo-random bytes (incompressible, every byte matters);
//	pattern – 512-byte sectors of readable text "<vm> disk<N> sector <i>", handy in hex dumps;
//	sparse  – a file with holes: one 64 KiB block of random bytes in every 16, zeros elsewhere;
//	zero    – all zeros (a single hole).
func writeDiskContent(path, vmName string, disk int, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	rng := mrand.New(mrand.NewSource(diskSeed(vmName, disk)))
	buf := make([]byte, contentBlock)

	switch cfg.diskContent {
	case "random":
		for off := int64(0); off < size; off += contentBlock {
			n := min64(contentBlock, size-off)
			_, _ = rng.Read(buf[:n])
			if _, err := f.Write(buf[:n]); err != nil {
				return err
			}
		}
	case "pattern":
		for off := int64(0); off < size; off += contentBlock {
			n := min64(contentBlock, size-off)
			for s := int64(0); s < n; s += 512 {
				sector := buf[s:min64(s+512, n)]
				line := fmt.Sprintf("%s disk%d sector %d\n", vmName, disk, (off+s)/512)
				for i := range sector {
					sector[i] = line[i%len(line)]
				}
			}
			if _, err := f.Write(buf[:n]); err != nil {
				return err
			}
		}
	case "sparse":
		for off, block := int64(0), 0; off < size; off, block = off+contentBlock, block+1 {
			if block%16 != 0 {
				continue
			}
			n := min64(contentBlock, size-off)
			_, _ = rng.Read(buf[:n])
			if _, err := f.WriteAt(buf[:n], off); err != nil {
				return err
			}
		}
		return f.Truncate(size)
	case "zero":
		return f.Truncate(size)
	}
	return nil
}

func min64(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}

// fileDigests returns the size, SHA-1 and SHA-256 (lower-case hex) of a file.
func fileDigests(path string) (int64, string, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", "", err
	}
	defer f.Close()
	h1, h256 := sha1.New(), sha256.New()
	n, err := io.Copy(io.MultiWriter(h1, h256), f)
	if err != nil {
		return 0, "", "", err
	}
	return n, hex.EncodeToString(h1.Sum(nil)), hex.EncodeToString(h256.Sum(nil)), nil
}

// fileSHA256 returns the size and SHA-256 (lower-case hex) of a file.
func fileSHA256(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// thumbprint formats a digest the way vCenter (sslThumbprint) and Node's
// getPeerCertificate().fingerprint256 do: upper-case hex pairs joined by colons.
func thumbprint(sum []byte) string {
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// selfSignedCertificate makes a fresh ECDSA P-256 certificate named commonName for the given
// IP addresses and localhost, and returns it with its SHA-1 and SHA-256 thumbprints (of the DER
// certificate).
func selfSignedCertificate(commonName string, ips []net.IP) (tls.Certificate, string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, "", "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"Sneakernet vcsim test peer"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           ips,
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", "", err
	}
	s1, s256 := sha1.Sum(der), sha256.Sum256(der)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return cert, thumbprint(s1[:]), thumbprint(s256[:]), nil
}
