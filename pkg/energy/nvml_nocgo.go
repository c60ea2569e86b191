//go:build !cgo

package energy

// NVMLSensor is unavailable in CGO_ENABLED=0 builds: go-nvml needs cgo.
type NVMLSensor struct{}

var errNoCgo = Unavailable("nvml", "built without cgo (rebuild with CGO_ENABLED=1 to measure NVIDIA GPUs)")

// OpenNVML reports that this binary cannot reach NVML.
func OpenNVML(NVMLOptions) (*NVMLSensor, error) { return nil, errNoCgo }

// ProbeNVML reports that this binary cannot reach NVML.
func ProbeNVML(NVMLOptions) (NVMLInfo, error) { return NVMLInfo{}, errNoCgo }

// Name implements Sensor.
func (s *NVMLSensor) Name() string { return "nvml" }

// Channels implements Sensor.
func (s *NVMLSensor) Channels() []Channel { return nil }

// Read implements Sensor.
func (s *NVMLSensor) Read([]Sample, ReadMode) error { return errNoCgo }

// Close implements Sensor.
func (s *NVMLSensor) Close() error { return nil }

// OtherProcesses reports that this binary cannot reach NVML.
func (s *NVMLSensor) OtherProcesses() ([]string, error) { return nil, errNoCgo }
