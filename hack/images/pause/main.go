// Command pause is the pod sandbox process of the local cluster
// (hack/cluster-up.sh): it holds the pod's namespaces open, reaps zombies
// when it is PID 1 of a shared process namespace, and exits 0 on SIGINT or
// SIGTERM. It is built locally, so the cluster needs no image from outside
// the machine.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
