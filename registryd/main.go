// Command registryd is Berth's OCI registry daemon, a drop-in replacement
// for the CNCF Distribution registry:
//
//	registryd serve [--hold-file PATH] [--idle-timeout 2m] [--body-timeout 1m] [config.yml]
//	registryd garbage-collect [flags] config.yml
//	registryd --version
//
// The configuration file is Distribution's config.yml (version 0.1), with
// REGISTRY_* environment overrides. Without a file argument, serve reads
// REGISTRY_CONFIGURATION_PATH, and without that it starts on an embedded
// default: filesystem storage under /var/lib/registry (override with
// REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY) on :5000.
//
// --hold-file names the read-only hold file the operator writes during a
// garbage-collection run (package hold; docs/registryd-live-state.md):
// serve reads it before serving and refuses writes while it holds an
// active hold. It is a flag only, never an environment variable: REGISTRY_*
// variables are configuration overrides.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/version"
	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/handlers"
	"github.com/berth-dev/berth/registryd/server"
)

// command is one registryd subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands are registryd's subcommands; each file may add its own in init.
var commands = map[string]command{
	"serve": {summary: "serve the registry API", run: runServe},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-v" || args[0] == "version" {
		fmt.Fprintln(stdout, "registryd", version.Version)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "registryd: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	if err := cmd.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "registryd %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: registryd <command> [arguments]\n\ncommands:")
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range commands {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(w, "  %-16s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(w, "  --version        print the version")
}

// loadConfiguration reads the configuration at path, at
// REGISTRY_CONFIGURATION_PATH when path is empty, or the embedded default
// when neither is set. Environment overrides apply in every case.
func loadConfiguration(path string) (*configuration.Configuration, string, error) {
	if path == "" {
		path = os.Getenv("REGISTRY_CONFIGURATION_PATH")
	}
	if path == "" {
		cfg, err := configuration.Parse(bytes.NewReader(configuration.DefaultYAML()))
		return cfg, "embedded default", err
	}
	f, err := os.Open(path) //nolint:gosec // G703: the operator names the config file on the command line
	if err != nil {
		return nil, path, err
	}
	defer f.Close()
	cfg, err := configuration.Parse(f)
	if err != nil {
		return nil, path, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, path, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	holdFile := fs.String("hold-file", "", "read-only hold file to watch (written by the operator during garbage collection)")
	idle := fs.Duration("idle-timeout", server.DefaultIdleTimeout, "close a keep-alive connection idle this long (0: never)")
	body := fs.Duration("body-timeout", handlers.DefaultBodyTimeout, "fail a request whose body sends nothing this long (0: never)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: registryd serve [flags] [config.yml]\n\nflags (Distribution's config.yml has no key for these):")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	for name, d := range map[string]time.Duration{"--idle-timeout": *idle, "--body-timeout": *body} {
		if d < 0 {
			return fmt.Errorf("%s: %s is negative; use 0 to turn the timeout off", name, d)
		}
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("too many arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg, source, err := loadConfiguration(fs.Arg(0))
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	logger, closeHooks, err := server.NewLogging(cfg, stderr, level)
	if err != nil {
		return err
	}
	defer func() {
		// A failure from here on is logged at the fatal level (which a
		// log hook may mail), and queued hook mail is delivered.
		if err != nil {
			logger.Log(context.Background(), server.LevelFatal, "registryd stopped", "error", err)
		}
		drainCtx, cancel := context.WithTimeout(context.Background(), server.HookDrain)
		defer cancel()
		if herr := closeHooks(drainCtx); herr != nil {
			fmt.Fprintf(stderr, "registryd: %v\n", herr)
		}
	}()
	// The file (not the embedded default) is watched and re-applied live.
	configPath := fs.Arg(0)
	if configPath == "" {
		configPath = os.Getenv("REGISTRY_CONFIGURATION_PATH")
	}
	srv, err := server.New(cfg, server.Options{
		Logger: logger, AccessLog: stdout, ConfigPath: configPath, LogLevel: level, HoldFile: *holdFile,
		IdleTimeout: offIfZero(*idle), BodyTimeout: offIfZero(*body),
	})
	if err != nil {
		return err
	}
	attrs := []any{"version", version.Version, "config", source, "storage", cfg.Storage.Driver()}
	if cfg.Storage.Filesystem != nil {
		root := cfg.Storage.Filesystem.RootDirectory
		if root == "" {
			root = configuration.DefaultRootDirectory
		}
		attrs = append(attrs, "rootdirectory", root)
	}
	if *holdFile != "" {
		attrs = append(attrs, "holdFile", *holdFile)
	}
	logger.Info("Starting registryd", attrs...)
	l, err := srv.Listen()
	if err != nil {
		return err
	}
	return srv.Serve(ctx, l)
}

// offIfZero maps a flag's 0 ("never") to the negative duration that turns
// a server.Options timeout off (0 there selects the default).
func offIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
