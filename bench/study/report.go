package study

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/batchlab/batchlab/bench/grid"
	"github.com/batchlab/batchlab/bench/internal/plotkit"
	"github.com/batchlab/batchlab/engine/atomicfile"
)

// Files of the report, written into the study's directory.
const (
	reportFile   = "report.html"
	resultsFile  = "results.json"
	runsFile     = "runs.csv"
	findingsFile = "findings.csv"
	noiseFile    = "noise.csv"
	figuresDir   = "figures" // every plot of the page as name.png and name.svg
)

// writeReport writes the report of r into dir: report.html (one static
// page, plots inline, nothing fetched from the network), results.json
// (all of r), runs.csv (a row per run and epoch), findings.csv, noise.csv
// (a row per noise-scale estimate) and every
// plot of the page as figures/<name>.png and .svg, for documents that
// cannot inline the page's SVG.
//
// Everything is rendered in memory first, so a failure there leaves an
// earlier report as it was. Then each file replaces the old one atomically
// (atomicfile), the page last: no file is ever half-written, and should a
// write fail midway, the files before it are new and the page still the
// old one.
//
// The page model is page.go, its template report.html.tmpl, the CSV
// files csv.go and the NaN-safe JSON json.go.
func writeReport(dir string, r *Results) error {
	if r == nil {
		return errors.New("report: no results")
	}
	page, figs, err := renderPage(r)
	if err != nil {
		return err
	}
	results, err := marshalFinite(r)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	var runs, findings, noise bytes.Buffer
	if err := writeRunsCSV(&runs, r); err != nil {
		return err
	}
	if err := writeFindingsCSV(&findings, r); err != nil {
		return err
	}
	if err := writeNoiseCSV(&noise, r); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{resultsFile, results}, {runsFile, runs.Bytes()}, {findingsFile, findings.Bytes()}, {noiseFile, noise.Bytes()}} {
		if err := atomicfile.WriteFile(filepath.Join(dir, f.name), f.data); err != nil {
			return err
		}
	}
	if err := saveFigures(filepath.Join(dir, figuresDir), figs); err != nil {
		return err
	}
	if r.Grid != nil {
		// The grid's own report (its plots, grid.json, CSV) in gridDir.
		if _, err := grid.Report(filepath.Join(dir, gridDir)); err != nil {
			return fmt.Errorf("report: grid: %w", err)
		}
	}
	return atomicfile.WriteFile(filepath.Join(dir, reportFile), page)
}

// saveFigures writes each drawn figure as name.png and name.svg into dir
// and removes every other .png and .svg there, so that no figure is left
// from an earlier report.
func saveFigures(dir string, figs []figure) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, f := range figs {
		if f.plot == nil {
			continue
		}
		files, err := plotkit.SaveSVGAndPNG(f.plot, dir, f.Name)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		for _, file := range files {
			keep[filepath.Base(file)] = true
		}
	}
	old, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range old {
		if ext := filepath.Ext(e.Name()); !keep[e.Name()] && (ext == ".png" || ext == ".svg") {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
