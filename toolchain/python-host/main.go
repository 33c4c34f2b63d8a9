// Command pulumi-language-python fronts the upstream Python language host.
//
// Why: this machine's Go module proxy serves the Python language host only as
// part of sdk/v3 v3.79.0 (newer hosts live in an unpublished module). Since
// pulumi v3.221 the engine starts a Python policy pack through the language
// host's RunPlugin(kind="analyzer"), which v3.79.0 does not understand. This
// front starts the upstream host, passes every RPC through byte for byte, and
// answers RunPlugin for analyzers the way current upstream hosts do:
// `python -u -m pulumi.policy <engine> <pack dir>`.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

const upstreamHost = "pulumi-language-python-upstream"

const runPluginMethod = "/pulumirpc.LanguageRuntime/RunPlugin"

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	upstream, port, err := startUpstream(os.Args[1:])
	if err != nil {
		return err
	}
	defer func() { _ = upstream.Process.Kill() }()

	conn, err := grpc.NewClient("127.0.0.1:"+port,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", upstreamHost, err)
	}
	defer conn.Close()

	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	server := grpc.NewServer(
		grpc.ForceServerCodec(rawCodec{}),
		grpc.UnknownServiceHandler(proxy{conn: conn}.handle),
		grpc.MaxRecvMsgSize(400*1024*1024))
	// The engine reads the port from our first line of output, like any plugin.
	fmt.Printf("%d\n", listener.Addr().(*net.TCPAddr).Port)

	go func() {
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
		<-signals
		server.Stop()
	}()
	go func() { _ = upstream.Wait(); server.Stop() }()
	return server.Serve(listener)
}

// startUpstream runs the upstream host with our arguments and returns the port it prints.
func startUpstream(args []string) (*exec.Cmd, string, error) {
	path, err := exec.LookPath(upstreamHost)
	if err != nil {
		self, _ := os.Executable()
		path = filepath.Join(filepath.Dir(self), upstreamHost)
	}
	cmd := exec.Command(path, args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("starting %s: %w", path, err)
	}
	reader := bufio.NewReader(stdout)
	line, err := reader.ReadString('\n')
	if err != nil {
		return nil, "", fmt.Errorf("reading the port of %s: %w", path, err)
	}
	go func() { _, _ = io.Copy(os.Stdout, reader) }()
	return cmd, strings.TrimSpace(line), nil
}

type proxy struct{ conn *grpc.ClientConn }

func (p proxy) handle(_ any, server grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(server)
	var first []byte
	if err := server.RecvMsg(&first); err != nil {
		return err
	}
	if method == runPluginMethod {
		var req pulumirpc.RunPluginRequest
		if err := proto.Unmarshal(first, &req); err != nil {
			return err
		}
		if req.GetKind() == "analyzer" {
			return runPolicyPack(&req, server)
		}
	}
	return p.forward(method, first, server)
}

// forward relays one call of any shape (unary or streaming) to the upstream host.
func (p proxy) forward(method string, first []byte, server grpc.ServerStream) error {
	ctx, cancel := context.WithCancel(server.Context())
	defer cancel()
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		ctx = metadata.NewOutgoingContext(ctx, md.Copy())
	}
	client, err := p.conn.NewStream(ctx,
		&grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method)
	if err != nil {
		return err
	}
	// io.EOF here means the upstream already ended the call, typically with a status such as
	// Unimplemented (sent before it read the request); RecvMsg below returns that status. Returning
	// io.EOF instead reached the engine as status Unknown "EOF", so it did not fall back from
	// GetRequiredPackages to GetRequiredPlugins: an intermittent "failed to discover package
	// requirements: EOF" at the start of `pulumi up`.
	if err := client.SendMsg(&first); err != nil && err != io.EOF {
		return err
	}
	go func() {
		for {
			var frame []byte
			if err := server.RecvMsg(&frame); err != nil {
				_ = client.CloseSend()
				return
			}
			if err := client.SendMsg(&frame); err != nil {
				return
			}
		}
	}()
	if header, err := client.Header(); err == nil {
		_ = server.SendHeader(header)
	}
	for {
		var frame []byte
		if err := client.RecvMsg(&frame); err != nil {
			server.SetTrailer(client.Trailer())
			if err == io.EOF {
				return nil
			}
			return err
		}
		if err := server.SendMsg(&frame); err != nil {
			return err
		}
	}
}

// runPolicyPack starts a Python policy pack as current upstream hosts do.
func runPolicyPack(req *pulumirpc.RunPluginRequest, server grpc.ServerStream) error {
	packDir := req.GetInfo().GetProgramDirectory()
	if packDir == "" {
		packDir = req.GetPwd()
	}
	args := append([]string{"-u", "-m", "pulumi.policy"}, req.GetArgs()...)
	args = append(args, packDir)
	cmd := exec.Command(pythonFor(req), args...)
	cmd.Dir = packDir
	cmd.Env = req.GetEnv()
	sender := &lockedSender{server: server}
	cmd.Stdout = streamWriter{sender: sender, stdout: true}
	cmd.Stderr = streamWriter{sender: sender}
	code := int32(0)
	if err := cmd.Run(); err != nil {
		exitErr, ok := err.(*exec.ExitError)
		if !ok {
			return fmt.Errorf("starting policy pack %s: %w", packDir, err)
		}
		code = int32(exitErr.ExitCode())
	}
	return sender.send(&pulumirpc.RunPluginResponse{
		Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: code}})
}

// pythonFor honours the pack's `virtualenv` runtime option, then PULUMI_PYTHON_CMD, then python3.
func pythonFor(req *pulumirpc.RunPluginRequest) string {
	if options := req.GetInfo().GetOptions(); options != nil {
		if venv, ok := options.AsMap()["virtualenv"].(string); ok && venv != "" {
			if !filepath.IsAbs(venv) {
				venv = filepath.Join(req.GetInfo().GetProgramDirectory(), venv)
			}
			return filepath.Join(venv, "bin", "python")
		}
	}
	if cmd := os.Getenv("PULUMI_PYTHON_CMD"); cmd != "" {
		return cmd
	}
	return "python3"
}

type streamWriter struct {
	sender *lockedSender
	stdout bool
}

func (w streamWriter) Write(p []byte) (int, error) {
	data := append([]byte(nil), p...)
	resp := &pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stderr{Stderr: data}}
	if w.stdout {
		resp = &pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stdout{Stdout: data}}
	}
	if err := w.sender.send(resp); err != nil {
		return 0, err
	}
	return len(p), nil
}

// lockedSender serialises sends: stdout and stderr are copied by two goroutines,
// and a gRPC stream allows one sender at a time.
type lockedSender struct {
	mu     sync.Mutex
	server grpc.ServerStream
}

func (s *lockedSender) send(resp *pulumirpc.RunPluginResponse) error {
	raw, err := proto.Marshal(resp)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.server.SendMsg(&raw)
}

// rawCodec moves messages as opaque bytes, so the proxy needs no knowledge of
// the RPCs it relays. It registers as "proto" to keep the wire content type.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.(*[]byte); ok {
		return *b, nil
	}
	return proto.Marshal(v.(proto.Message))
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	if b, ok := v.(*[]byte); ok {
		*b = append((*b)[:0], data...)
		return nil
	}
	return proto.Unmarshal(data, v.(proto.Message))
}
