package study

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// MaxCycles is the most cycles a study may ask for (the schema's bound on
// execution.cycles), and MaxExecutions the most runs × cycles: the order
// and schedule are built in memory, so an absurd product must be refused,
// not allocated.
const (
	MaxCycles     = 1000
	MaxExecutions = 2_000_000
)

// SetCycles changes the number of cycles (e.g. from --cycles) and recomputes
// the order. The design hash does not change: it covers runs, not execution.
func (p *Plan) SetCycles(n int) error {
	if n < 1 {
		return fmt.Errorf("set cycles: %d is not a positive number of cycles", n)
	}
	if n > MaxCycles {
		return fmt.Errorf("set cycles: %d cycles is more than the limit of %d", n, MaxCycles)
	}
	if satMul(len(p.Runs), n) > MaxExecutions {
		return fmt.Errorf("set cycles: %d runs × %d cycles is more than the limit of %d executions; use fewer cycles or split the study", len(p.Runs), n, MaxExecutions)
	}
	p.Execution.Cycles = n
	p.computeOrder()
	return nil
}

// computeOrder fills Order, Schedule and Seed from Execution and the runs.
// The shuffled order is reproducible: the seed is execution.seed, else the
// first 8 hex digits of the design hash, and the shuffle is a Fisher-Yates
// over PCG, written out here so it never changes with the Go version.
func (p *Plan) computeOrder() {
	n, cycles := len(p.Runs), p.Execution.Cycles
	p.Order = make([][]int, cycles)
	p.Schedule = p.Schedule[:0]
	if p.Execution.Seed != nil {
		p.Seed = uint64(*p.Execution.Seed)
	} else {
		p.Seed = 0
		if len(p.DesignHash) >= 8 {
			s, _ := strconv.ParseUint(p.DesignHash[:8], 16, 64)
			p.Seed = s
		}
	}
	rng := rand.NewPCG(p.Seed, 0x6c6c656d) // "llem"
	for c := range cycles {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		if p.Execution.Order == "shuffled" {
			for i := n - 1; i > 0; i-- {
				j := int(bounded(rng, uint64(i+1)))
				idx[i], idx[j] = idx[j], idx[i]
			}
		}
		p.Order[c] = idx
	}
	defer p.computeEstimate()
	if p.Execution.Order == "sequential" {
		defer p.groupByGPU()
		for r := range n {
			for c := range cycles {
				p.Schedule = append(p.Schedule, Slot{Run: r, Cycle: c + 1})
			}
		}
		return
	}
	for c, idx := range p.Order {
		for _, r := range idx {
			p.Schedule = append(p.Schedule, Slot{Run: r, Cycle: c + 1})
		}
	}
	p.groupByGPU()
}

// bounded returns a uniform value in [0, n) by rejection sampling, so the
// sequence depends only on the PCG stream.
func bounded(src *rand.PCG, n uint64) uint64 {
	limit := ^uint64(0) - (^uint64(0) % n)
	for {
		if v := src.Uint64(); v < limit {
			return v % n
		}
	}
}
