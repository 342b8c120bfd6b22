// netserver is the local cluster's test server and client: one static binary, no
// dependencies, baked into the real node's images (see devcluster/images.py).
//
//	netserver serve [PORT[/tcp|/udp] ...]   HTTP on each TCP port, echo on each UDP port
//	netserver pause                         the Pod sandbox: wait for SIGTERM, exit 0
//	netserver get URL                       print the body of an HTTP GET (exit 1 on error)
//	netserver udp HOST:PORT MESSAGE         send one datagram, print the reply
//	netserver lookup NAME                   print the IPv4 addresses NAME resolves to
//
// Every answer names the Pod and the port that produced it ("<hostname> <port>"), so a
// test can tell which container port a Service really sent a request to. GET
// /burn?ms=N spins the CPU for N milliseconds (at most 1000) before answering: real work
// for the autoscaling tests, whose metrics come from the kubelet's CPU accounting.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	clientTimeout = 3 * time.Second
	maxBurn       = 1000 // milliseconds of CPU one request may ask for
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: netserver serve|pause|get|udp|lookup ...")
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "pause":
		<-waitChannel()
	case "get":
		err = get(os.Args[2:])
	case "udp":
		err = udp(os.Args[2:])
	case "lookup":
		err = lookup(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err.Error())
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "netserver:", message)
	os.Exit(1)
}

type listenSpec struct{ port, protocol string }

func parsePorts(args []string) ([]listenSpec, error) {
	if len(args) == 0 {
		if env := os.Getenv("NETSERVER_PORTS"); env != "" {
			args = strings.Fields(env)
		} else {
			args = []string{"8080"}
		}
	}
	specs := make([]listenSpec, 0, len(args))
	for _, arg := range args {
		port, protocol, found := strings.Cut(arg, "/")
		if !found {
			protocol = "tcp"
		}
		protocol = strings.ToLower(protocol)
		if protocol != "tcp" && protocol != "udp" {
			return nil, fmt.Errorf("port %q: protocol must be tcp or udp", arg)
		}
		specs = append(specs, listenSpec{port, protocol})
	}
	return specs, nil
}

func serve(args []string) error {
	specs, err := parsePorts(args)
	if err != nil {
		return err
	}
	hostname, _ := os.Hostname()
	var servers []*http.Server
	var conns []net.PacketConn
	errs := make(chan error, len(specs))
	for _, spec := range specs {
		identity := hostname + " " + spec.port
		if spec.protocol == "udp" {
			conn, err := net.ListenPacket("udp", ":"+spec.port)
			if err != nil {
				return err
			}
			conns = append(conns, conn)
			go echo(conn, identity)
			continue
		}
		listener, err := net.Listen("tcp", ":"+spec.port)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, identity)
		})
		mux.HandleFunc("/burn", func(w http.ResponseWriter, r *http.Request) {
			ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
			if err != nil || ms < 0 || ms > maxBurn {
				http.Error(w, fmt.Sprintf("ms must be 0 to %d", maxBurn), http.StatusBadRequest)
				return
			}
			burn(time.Duration(ms) * time.Millisecond)
			fmt.Fprintln(w, identity)
		})
		server := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, server)
		go func() { errs <- server.Serve(listener) }()
	}
	fmt.Printf("netserver %s serving %v\n", hostname, specs)
	select {
	case got := <-waitChannel():
		fmt.Printf("netserver %s: %v, shutting down\n", hostname, got)
	case err := <-errs:
		return err
	}
	// Finish the requests in flight, as a well-behaved server does on SIGTERM.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, server := range servers {
		wg.Add(1)
		go func() { defer wg.Done(); _ = server.Shutdown(ctx) }()
	}
	wg.Wait()
	for _, conn := range conns {
		_ = conn.Close()
	}
	return nil
}

// burn keeps one CPU busy for d of wall-clock time (CPU time too, on an idle core).
func burn(d time.Duration) {
	deadline := time.Now().Add(d)
	x := uint64(1)
	for time.Now().Before(deadline) {
		for i := 0; i < 1000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	if x == 0 { // never true; keeps the loop from being optimised away
		fmt.Fprint(io.Discard, x)
	}
}

func waitChannel() <-chan os.Signal {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	return signals
}

func echo(conn net.PacketConn, identity string) {
	buffer := make([]byte, 65535)
	for {
		n, peer, err := conn.ReadFrom(buffer)
		if err != nil {
			return
		}
		reply := identity + " " + strings.TrimSpace(string(buffer[:n])) + "\n"
		_, _ = conn.WriteTo([]byte(reply), peer)
	}
}

func get(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: netserver get URL")
	}
	client := &http.Client{Timeout: clientTimeout}
	response, err := client.Get(args[0])
	if err != nil {
		return err
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if err != nil {
		return err
	}
	if response.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", args[0], response.StatusCode)
	}
	fmt.Print(string(body))
	return nil
}

func udp(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: netserver udp HOST:PORT MESSAGE")
	}
	conn, err := net.DialTimeout("udp", args[0], clientTimeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(clientTimeout))
	if _, err := conn.Write([]byte(args[1])); err != nil {
		return err
	}
	buffer := make([]byte, 65535)
	n, err := conn.Read(buffer)
	if err != nil {
		return err
	}
	fmt.Print(string(buffer[:n]))
	return nil
}

func lookup(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: netserver lookup NAME")
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	addresses, err := net.DefaultResolver.LookupIP(ctx, "ip4", args[0])
	if err != nil {
		return err
	}
	found := make([]string, 0, len(addresses))
	for _, address := range addresses {
		found = append(found, address.String())
	}
	sort.Strings(found)
	fmt.Println(strings.Join(found, "\n"))
	return nil
}
