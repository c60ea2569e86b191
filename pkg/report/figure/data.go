package figure

// Estimate is a mean with its confidence interval; OK is false when the
// metric was not measured.
type Estimate struct {
	Mean, Lo, Hi float64
	// HasCI is false when there is no interval (one cycle).
	HasCI bool
	OK    bool
}

// Percentiles summarise a latency sample in milliseconds (a record keeps
// these, not the raw sample).
type Percentiles struct {
	N                                  int
	Min, P50, P90, P95, P99, Max, Mean float64
}

// Config is one configuration (one run of one study) as the comparison
// figures show it.
type Config struct {
	// ID is the short key shown on axes and in the report's table ("C1").
	ID string
	// Label is the full description ("native / llama / fp16 / bs 8").
	Label string
	// Category places it on a grouped axis (e.g. "8" for batch size 8);
	// Series is its colour group (e.g. "fp16"). Empty means ungrouped: the
	// ID is the category and there is one series.
	Category, Series string

	EnergyPerToken Estimate // J per output token
	Throughput     Estimate // output tokens/s
	Quality        Estimate // task score, when the study measured one
	PrefillJ       Estimate // energy of the prefill phase per window
	DecodeJ        Estimate // energy of the decode phase per window
	TotalJ         Estimate // raw energy per window

	TTFT, ITL Percentiles

	// CycleEnergyPerToken is J/output token of each valid cycle, in cycle
	// order; Cycles are their cycle numbers.
	CycleEnergyPerToken []float64
	Cycles              []int
	// SteadyAt is the cycle at which steady state was reached (0: not).
	SteadyAt int
}

// Grouping names the dimensions the comparison figures group by.
type Grouping struct {
	// Category is the axis dimension's name ("batch size"); empty: configs.
	Category string
	// Series is the colour dimension's name ("precision"); empty: none.
	Series string
}

// Timeline is one measured window's samples.
type Timeline struct {
	// Name is the figure's file stem; Title its heading.
	Name, Title string
	// WindowS is the measured window's length in seconds; times are
	// seconds from its start.
	WindowS  float64
	Channels []Trace
	Phases   []Span
	// BaselineW is the idle baseline power (NaN when none was measured),
	// on the same devices as the traces' sum.
	BaselineW float64
	// MeanW is the window's counter-derived mean power, all devices.
	MeanW float64
	// MeanMethod says how MeanW was obtained (counter, estimate-tdp ...).
	MeanMethod string
}

// Trace is one device channel's instant readings.
type Trace struct {
	Name     string
	T        []float64 // s since window start
	PowerW   []float64 // NaN where not read
	TempC    []float64 // NaN where not read
	Throttle []bool    // a thermal or power slowdown bit was set
}

// Span is a worker phase interval in seconds from the window start.
type Span struct {
	Name       string // prefill or decode
	Start, End float64
}
