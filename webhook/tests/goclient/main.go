// A test client for mesa-injector written against Go's standard crypto/tls
// and net/http, the stack the Kubernetes API server calls webhooks with. It
// verifies the serving certificate the same way: RootCAs from the caBundle,
// ServerName <service>.<namespace>.svc, TLS 1.2 or newer.
//
//	review      -url U -ca FILE -servername N -body FILE      POST once, print the body
//	expect-fail -url U -ca FILE -servername N [-maxtls 1.1]    the handshake must fail
//	load        -url U -ca FILE -servername N -body FILE -duration D -concurrency C
//	            POST in a loop (half the workers on fresh connections, so
//	            handshakes run across certificate rotations); print JSON stats
//
// Standard library only: built with GO111MODULE=off, no network needed.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func tlsConfig(caFile, serverName string, maxVersion uint16) *tls.Config {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "goclient:", err)
		os.Exit(2)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fmt.Fprintln(os.Stderr, "goclient: no certificate in", caFile)
		os.Exit(2)
	}
	return &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12, MaxVersion: maxVersion}
}

func client(cfg *tls.Config, keepAlive bool) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   cfg,
			DisableKeepAlives: !keepAlive,
			ForceAttemptHTTP2: false,
		},
	}
}

func post(c *http.Client, url string, body []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: goclient review|expect-fail|load [flags]")
		os.Exit(2)
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	url := fs.String("url", "", "webhook URL")
	ca := fs.String("ca", "", "CA bundle (PEM)")
	serverName := fs.String("servername", "", "name to verify, <svc>.<ns>.svc")
	bodyFile := fs.String("body", "", "request body")
	duration := fs.Duration("duration", 5*time.Second, "load duration")
	concurrency := fs.Int("concurrency", 4, "load workers")
	maxTLS := fs.String("maxtls", "", "highest TLS version to offer (1.1 to test refusal)")
	fs.Parse(os.Args[2:])

	var maxVersion uint16
	if *maxTLS == "1.1" {
		maxVersion = tls.VersionTLS11
	}
	cfg := tlsConfig(*ca, *serverName, maxVersion)
	if *maxTLS == "1.1" {
		cfg.MinVersion = tls.VersionTLS10
	}
	var body []byte
	if *bodyFile != "" {
		var err error
		if body, err = os.ReadFile(*bodyFile); err != nil {
			fmt.Fprintln(os.Stderr, "goclient:", err)
			os.Exit(2)
		}
	}

	switch mode {
	case "review":
		resp, b, err := post(client(cfg, false), *url, body)
		if err != nil {
			fmt.Fprintln(os.Stderr, "goclient: request failed:", err)
			os.Exit(1)
		}
		// Uncompressed: net/http asked for gzip on its own (as it does for
		// the API server) and decoded a gzip answer transparently.
		fmt.Fprintf(os.Stderr, "goclient: HTTP %d, TLS 0x%04x, peer %s, gzip %v\n", resp.StatusCode, resp.TLS.Version,
			resp.TLS.PeerCertificates[0].Subject.CommonName, resp.Uncompressed)
		os.Stdout.Write(b)
		if resp.StatusCode != 200 {
			os.Exit(1)
		}
	case "expect-fail":
		req, _ := http.NewRequest("GET", *url, nil)
		resp, err := client(cfg, false).Do(req)
		if err == nil {
			resp.Body.Close()
			fmt.Fprintln(os.Stderr, "goclient: connection unexpectedly succeeded")
			os.Exit(1)
		}
		fmt.Println("refused:", err)
	case "load":
		var ok, failed, other int64
		var mu sync.Mutex
		serials := map[string]bool{}
		errs := []string{}
		deadline := time.Now().Add(*duration)
		var wg sync.WaitGroup
		for w := 0; w < *concurrency; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				c := client(cfg, w%2 == 0)
				for time.Now().Before(deadline) {
					resp, b, err := post(c, *url, body)
					if err != nil {
						atomic.AddInt64(&failed, 1)
						mu.Lock()
						if len(errs) < 5 {
							errs = append(errs, err.Error())
						}
						mu.Unlock()
						continue
					}
					if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"allowed":true`)) {
						atomic.AddInt64(&other, 1)
						continue
					}
					atomic.AddInt64(&ok, 1)
					mu.Lock()
					serials[resp.TLS.PeerCertificates[0].SerialNumber.String()] = true
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait()
		out, _ := json.Marshal(map[string]interface{}{
			"ok": ok, "failed": failed, "bad_status": other, "distinct_certs": len(serials), "errors": errs,
		})
		fmt.Println(string(out))
		if failed > 0 || other > 0 {
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "goclient: unknown mode", mode)
		os.Exit(2)
	}
}
