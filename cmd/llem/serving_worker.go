package main

import (
	"context"

	"github.com/llenergymeasure/llem/pkg/serving"
)

// servingWorkerCmd is serving mode's worker (docs/serving.md): the parent
// starts `llem serving-worker --dir D` for a run with a serving: section;
// it starts the server, sends the load and reports the steady state over
// the worker protocol, leaving its report in D.
type servingWorkerCmd struct {
	Dir string `help:"The slot's work directory (the report and the server's log go there)." required:""`
	// The backend's Docker placement: the server runs as a container of
	// this image (DOCKER_HOST names the daemon).
	ServerImage     string   `name:"server-image" help:"Start the server in a container of this image (host network)."`
	ServerContainer string   `name:"server-container" help:"The server container's name."`
	ServerGPUs      []string `name:"server-gpus" sep:"," help:"UUIDs of the GPUs the server container gets."`
	ServerShmSize   int64    `name:"server-shm-size" help:"The server container's /dev/shm size in bytes."`
	ServerHubCache  string   `name:"server-hub-cache" help:"The host's Hugging Face hub cache, mounted into the server container."`
}

func (c *servingWorkerCmd) Run(ctx context.Context, stdio *IO) error {
	o := serving.WorkerOptions{Dir: c.Dir}
	if c.ServerImage != "" {
		o.Docker = &serving.DockerServer{Image: c.ServerImage, Name: c.ServerContainer, GPUs: c.ServerGPUs, ShmSize: c.ServerShmSize, HubCache: c.ServerHubCache}
	}
	return serving.RunWorker(ctx, stdio.Stdin, stdio.Stdout, o)
}
