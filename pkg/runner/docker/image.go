package docker

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Repository is where the release images live:
// llenergymeasure/{backend}:{llem_version}-cuda{major}.
const Repository = "llenergymeasure"

// CUDAMajors are the CUDA major versions images are built for (docker/ and
// the release workflow's matrix), oldest first.
var CUDAMajors = []int{12, 13}

// ImageBackends are the backends that have images. The native backend runs
// from any image that holds a static llem binary.
var ImageBackends = []string{"pytorch", "vllm", "tensorrt"}

// ImageRef returns the release image for backend, llem version and CUDA
// major, e.g. llenergymeasure/vllm:0.2.0-cuda12.
func ImageRef(backend, llemVersion string, cudaMajor int) string {
	return fmt.Sprintf("%s/%s:%s-cuda%d", Repository, backend, strings.TrimPrefix(llemVersion, "v"), cudaMajor)
}

// ResolveImage picks the image for backend. A pinned reference (tag or
// digest, from the study or the user config) wins as is. Otherwise the CUDA
// major is the newest one built that the host driver supports: a driver
// reporting CUDA 13.0 runs cuda12 and cuda13 images; one reporting 11.8 runs
// neither, which is an error with guidance. hostCUDAMajor 0 means unknown
// (no NVML): the newest image is used and the caller should warn.
func ResolveImage(backend, llemVersion, pinned string, hostCUDAMajor int) (string, error) {
	if pinned != "" {
		return pinned, nil
	}
	if hostCUDAMajor == 0 {
		return ImageRef(backend, llemVersion, CUDAMajors[len(CUDAMajors)-1]), nil
	}
	best := 0
	for _, m := range CUDAMajors {
		if m <= hostCUDAMajor {
			best = m
		}
	}
	if best == 0 {
		return "", &CUDAMismatchError{Backend: backend, HostMajor: hostCUDAMajor}
	}
	return ImageRef(backend, llemVersion, best), nil
}

// CUDAMismatchError says the host driver is too old for every image.
type CUDAMismatchError struct {
	Backend   string
	HostMajor int
	ImageTag  string // set when a specific image was checked
}

func (e *CUDAMismatchError) Error() string {
	if e.ImageTag != "" {
		return fmt.Sprintf("image %s needs a newer CUDA driver than the host's (CUDA %d)", e.ImageTag, e.HostMajor)
	}
	return fmt.Sprintf("no %s image supports the host's CUDA %d driver (images exist for CUDA %s)",
		e.Backend, e.HostMajor, joinInts(CUDAMajors))
}

// Fix says what to do about the mismatch.
func (e *CUDAMismatchError) Fix() string {
	return fmt.Sprintf("upgrade the NVIDIA driver to one that supports CUDA %d or newer, or build an image for your CUDA from docker/%s.Dockerfile and pin it with runners: %s: image: \"...\"",
		CUDAMajors[0], e.Backend, e.Backend)
}

var cudaTagRe = regexp.MustCompile(`-cuda(\d+)(?:$|[.@-])`)

// CUDAMajorOfTag reads the CUDA major from an llem image tag (…-cuda12), or 0.
func CUDAMajorOfTag(ref string) int {
	m := cudaTagRe.FindStringSubmatch(ref)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// Identity is what an image reference resolved to on the daemon: the image
// ID (the digest of its config, what containers are created from) and the
// registry digests it is known by (empty for an image built or imported
// locally and never pushed or pulled).
type Identity struct {
	Ref         string   `json:"ref"`
	ID          string   `json:"id"`
	RepoDigests []string `json:"repo_digests,omitempty"`
}

// Digest is the registry digest (repo@sha256:…) that matches Ref's
// repository, else the first one, else "".
func (id Identity) Digest() string {
	repo := repository(id.Ref)
	for _, d := range id.RepoDigests {
		if r, _, ok := strings.Cut(d, "@"); ok && r == repo {
			return d
		}
	}
	if len(id.RepoDigests) > 0 {
		return id.RepoDigests[0]
	}
	return ""
}

// repository strips the tag and digest from an image reference
// (registry:5000/a/b:tag@sha256:x → registry:5000/a/b).
func repository(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	slash := strings.LastIndexByte(ref, '/')
	if colon := strings.LastIndexByte(ref, ':'); colon > slash {
		ref = ref[:colon]
	}
	return ref
}

// InspectImage resolves ref on the daemon at host.
func InspectImage(ctx context.Context, host, ref string) (Identity, error) {
	cli, err := Connect(ctx, host)
	if err != nil {
		return Identity{}, err
	}
	defer cli.Close()
	res, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		return Identity{}, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return Identity{Ref: ref, ID: res.ID, RepoDigests: res.RepoDigests}, nil
}
