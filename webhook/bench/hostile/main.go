// Load for `make bench-webhook-hostile`: hostile connections from one
// source address and API-server-like reviews from another, each bound to its
// own loopback address (127.0.0.0/8 is all local on Linux), so the webhook
// sees two sources on one machine.
//
//	hostile -target HOST:PORT -source IP -conns N -mode idle|slow -duration D
//	        [-reopen D] [-ca FILE -servername N]
//	    keeps N connections open from IP, as a misbehaving pod would: idle
//	    (TCP only, no TLS hello) or slow (TLS handshake, then a request line
//	    and one header line, then a header byte every 2 s). A connection the
//	    server closes is opened again after -reopen. Prints JSON: dials, how
//	    long the connections lived (closed at once = refused at accept; at a
//	    deadline = cut; a dial that times out: its SYNs were dropped), the
//	    most held at once.
//	reviews -url U -source IP -ca FILE -servername N -body FILE -duration D
//	        [-connections C] [-pace D]
//	    C workers, each POSTing the review on a keep-alive connection of one
//	    Go http.Transport (the stack the API server calls webhooks with,
//	    Accept-Encoding: gzip included) and pausing -pace after each answer.
//	    An answer is good when it is a 200 carrying a JSON patch. Prints JSON:
//	    requests, errors (with the first few), latency percentiles, dials.
//
// Standard library only: built with GO111MODULE=off, no network needed.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "bench-hostile: "+format+"\n", a...)
	os.Exit(2)
}

func tlsConfig(caFile, serverName string) *tls.Config {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		die("%v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		die("no certificate in %s", caFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}
}

func dialer(source string) *net.Dialer {
	ip := net.ParseIP(source)
	if ip == nil {
		die("-source %q is not an IP address", source)
	}
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
}

// Lifetimes of hostile connections, bucketed by when the server closed them.
var lifeBuckets = []float64{0.1, 1, 2, 4, 8, 12, 20, 60}

type hostileStats struct {
	Mode          string    `json:"mode"`
	Conns         int       `json:"conns"`
	Dials         int64     `json:"dials"`
	DialErrors    int64     `json:"dial_errors"`
	DialTimeouts  int64     `json:"dial_timeouts"` // SYNs dropped until the dialer gave up
	HandshakeErrs int64     `json:"tls_errors"`
	MaxHeld       int64     `json:"max_held"`
	HeldAtEnd     int64     `json:"held_at_end"`
	Closed        []int64   `json:"closed_by_server_within"` // per lifeBuckets, then beyond
	Buckets       []float64 `json:"buckets_s"`
}

func hostile(args []string) {
	fs := flag.NewFlagSet("hostile", flag.ExitOnError)
	target := fs.String("target", "", "HOST:PORT")
	source := fs.String("source", "127.0.0.2", "source address")
	n := fs.Int("conns", 10000, "connections to hold")
	mode := fs.String("mode", "idle", "idle or slow")
	duration := fs.Duration("duration", 10*time.Second, "how long")
	reopen := fs.Duration("reopen", time.Second, "pause before a closed connection is opened again")
	caFile := fs.String("ca", "", "CA (slow mode)")
	serverName := fs.String("servername", "", "TLS server name (slow mode)")
	fs.Parse(args)
	if *mode != "idle" && *mode != "slow" {
		die("-mode must be idle or slow")
	}
	var cfg *tls.Config
	if *mode == "slow" {
		cfg = tlsConfig(*caFile, *serverName)
	}
	d := dialer(*source)
	end := time.Now().Add(*duration)
	st := hostileStats{Mode: *mode, Conns: *n, Closed: make([]int64, len(lifeBuckets)+1), Buckets: lifeBuckets}
	var held int64
	var wg sync.WaitGroup
	for i := 0; i < *n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				atomic.AddInt64(&st.Dials, 1)
				c, err := d.Dial("tcp", *target)
				if err != nil {
					atomic.AddInt64(&st.DialErrors, 1)
					if isTimeout(err) {
						atomic.AddInt64(&st.DialTimeouts, 1)
					}
					time.Sleep(*reopen)
					continue
				}
				start := time.Now()
				if h := atomic.AddInt64(&held, 1); h > atomic.LoadInt64(&st.MaxHeld) {
					for {
						m := atomic.LoadInt64(&st.MaxHeld)
						if h <= m || atomic.CompareAndSwapInt64(&st.MaxHeld, m, h) {
							break
						}
					}
				}
				closedByServer := hold(c, cfg, end, &st)
				c.Close()
				atomic.AddInt64(&held, -1)
				if closedByServer {
					life := time.Since(start).Seconds()
					b := sort.SearchFloat64s(lifeBuckets, life)
					atomic.AddInt64(&st.Closed[b], 1)
				} else {
					atomic.AddInt64(&st.HeldAtEnd, 1)
				}
				if time.Now().Before(end) {
					time.Sleep(*reopen)
				}
			}
		}()
	}
	wg.Wait()
	json.NewEncoder(os.Stdout).Encode(st)
}

// hold keeps c open until the server closes it (true) or the run ends.
func hold(c net.Conn, cfg *tls.Config, end time.Time, st *hostileStats) bool {
	buf := make([]byte, 512)
	if cfg == nil {
		c.SetReadDeadline(end)
		for {
			if _, err := c.Read(buf); err != nil {
				return !isTimeout(err)
			}
		}
	}
	tc := tls.Client(c, cfg)
	tc.SetDeadline(end)
	if err := tc.Handshake(); err != nil {
		if isTimeout(err) {
			return false
		}
		atomic.AddInt64(&st.HandshakeErrs, 1)
		return true
	}
	if _, err := tc.Write([]byte("POST /mutate-pods HTTP/1.1\r\nHost: x\r\n")); err != nil {
		return true
	}
	for {
		next := time.Now().Add(2 * time.Second)
		if next.After(end) {
			next = end
		}
		tc.SetReadDeadline(next)
		if _, err := tc.Read(buf); err != nil && !isTimeout(err) {
			return true
		}
		if !time.Now().Before(end) {
			return false
		}
		if _, err := tc.Write([]byte("X")); err != nil {
			return true
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

type reviewStats struct {
	Requests  int      `json:"requests"`
	Errors    int      `json:"errors"`
	FirstErrs []string `json:"first_errors"`
	Dials     int64    `json:"dials"`
	P50ms     float64  `json:"p50_ms"`
	P99ms     float64  `json:"p99_ms"`
	P999ms    float64  `json:"p999_ms"`
	MaxMs     float64  `json:"max_ms"`
	Rate      float64  `json:"req_per_s"`
}

func reviews(args []string) {
	fs := flag.NewFlagSet("reviews", flag.ExitOnError)
	url := fs.String("url", "", "https://HOST:PORT/mutate-pods")
	source := fs.String("source", "127.0.0.3", "source address")
	caFile := fs.String("ca", "", "CA")
	serverName := fs.String("servername", "", "TLS server name")
	bodyFile := fs.String("body", "", "AdmissionReview")
	duration := fs.Duration("duration", 10*time.Second, "how long")
	conns := fs.Int("connections", 4, "concurrent workers (keep-alive connections)")
	pace := fs.Duration("pace", 5*time.Millisecond, "pause after each answer")
	fs.Parse(args)
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		die("%v", err)
	}
	d := dialer(*source)
	var dials int64
	tr := &http.Transport{
		TLSClientConfig: tlsConfig(*caFile, *serverName),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			atomic.AddInt64(&dials, 1)
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: *conns,
		ForceAttemptHTTP2:   false,
	}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var mu sync.Mutex
	var lat []float64
	st := reviewStats{}
	start := time.Now()
	end := start.Add(*duration)
	var wg sync.WaitGroup
	for w := 0; w < *conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []float64
			var errs []string
			for time.Now().Before(end) {
				t0 := time.Now()
				e := postOnce(client, *url, body)
				dt := time.Since(t0).Seconds() * 1000
				mine = append(mine, dt)
				if e != "" {
					errs = append(errs, e)
				}
				time.Sleep(*pace)
			}
			mu.Lock()
			lat = append(lat, mine...)
			st.Errors += len(errs)
			for _, e := range errs {
				if len(st.FirstErrs) < 5 {
					st.FirstErrs = append(st.FirstErrs, e)
				}
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Float64s(lat)
	st.Requests = len(lat)
	st.Dials = atomic.LoadInt64(&dials)
	st.Rate = float64(len(lat)) / time.Since(start).Seconds()
	if len(lat) > 0 {
		q := func(p float64) float64 { return lat[int(p*float64(len(lat)-1))] }
		st.P50ms, st.P99ms, st.P999ms, st.MaxMs = q(0.5), q(0.99), q(0.999), lat[len(lat)-1]
	}
	json.NewEncoder(os.Stdout).Encode(st)
}

// postOnce returns "" for a 200 answer carrying a patch, else what went wrong.
func postOnce(c *http.Client, url string, body []byte) string {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, */*")
	resp, err := c.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err.Error()
	}
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"patchType":"JSONPatch"`)) {
		return fmt.Sprintf("status %d: %.100s", resp.StatusCode, b)
	}
	return ""
}

func main() {
	if len(os.Args) < 2 {
		die("usage: hostile|reviews [flags]")
	}
	switch os.Args[1] {
	case "hostile":
		hostile(os.Args[2:])
	case "reviews":
		reviews(os.Args[2:])
	default:
		die("unknown mode %s", os.Args[1])
	}
}
