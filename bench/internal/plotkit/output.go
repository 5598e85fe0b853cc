package plotkit

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"path/filepath"
	"strings"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/batchlab/batchlab/engine/atomicfile"
)

// gapPoints is the space between the parts of a plot.
const gapPoints = 8

// render draws p on a white canvas of the house size: the title across the
// top (in a smaller font where a long one would not fit the width), the
// legend to the right of the axes, where it cannot hide data. gonum/plot
// panics on data it cannot draw; that becomes an error, so that one bad
// plot cannot cost a whole report.
func render(p *plot.Plot, c vg.CanvasWriterTo) (err error) {
	defer func() {
		if e := recover(); e != nil {
			err = fmt.Errorf("drawing %q: %v", p.Title.Text, e)
		}
	}()
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	const gap = gapPoints

	title, legend := p.Title.Text, p.Legend
	p.Title.Text, p.Legend = "", plot.NewLegend() // drawn here instead
	defer func() { p.Title.Text, p.Legend = title, legend }()
	area := dc
	if title != "" {
		sty := p.Title.TextStyle
		sty.XAlign, sty.YAlign = draw.XCenter, draw.YTop
		if w, room := sty.Rectangle(title).Size().X, width-vg.Points(2*gap); w > room {
			sty.Font.Size = sty.Font.Size * room / w
		}
		dc.FillText(sty, vg.Point{X: width / 2, Y: height - p.Title.Padding}, title)
		area = draw.Crop(dc, 0, 0, 0, -sty.Rectangle(title).Size().Y-2*p.Title.Padding)
	}
	legend.Top, legend.Left = true, true
	if w := legend.Rectangle(area).Size().X; w > 0 {
		p.Draw(draw.Crop(area, 0, -w-vg.Points(2*gap), 0, 0))
		legend.Draw(draw.Crop(area, width-w-vg.Points(gap), 0, 0, -vg.Points(gap)))
	} else {
		p.Draw(area)
	}
	return nil
}

// Bars fits n bars, one per nominal x position 0…n-1, to p: the x axis
// spans half a slot beyond the first and the last, so that no bar is
// clipped at the edges, and the returned width fills 60% of a slot of the
// data area that render leaves beside p's legend (add the legend first).
// gonum sizes bars in points, not in data units: a fixed width is skinny
// with few bars and overlaps with many.
func Bars(p *plot.Plot, n int) vg.Length {
	p.X.Min, p.X.Max = -0.5, float64(n)-0.5
	const yAxis = 50 // points: the y axis's tick labels and label, about
	legend := p.Legend
	legend.Top, legend.Left = true, true
	area := width - vg.Points(yAxis+3*gapPoints)
	if w := legend.Rectangle(draw.New(vgsvg.New(width, height))).Size().X; w > 0 {
		area -= w + vg.Points(2*gapPoints)
	}
	return 0.6 * area / vg.Length(max(n, 1))
}

// InlineSVG renders p as an <svg> element for a web page: without the XML
// declaration and comment, which are not allowed inside an HTML document.
// gonum escapes all text it writes.
func InlineSVG(p *plot.Plot) (string, error) {
	c := vgsvg.New(width, height)
	if err := render(p, c); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", err
	}
	s := buf.String()
	return s[strings.Index(s, "<svg"):], nil
}

// Save renders p into path, atomically, in the format its extension names:
// .svg, .png or .pdf.
func Save(p *plot.Plot, path string) error {
	var c vg.CanvasWriterTo
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".svg":
		c = vgsvg.New(width, height)
	case ".png":
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(144))} // 907×567 pixels
	case ".pdf":
		c = vgpdf.New(width, height)
		// gonum's vgpdf registers a face without its weight and then asks
		// for it bold ("undefined font: liberationsans-bold B"): the
		// PDF's title is set in the regular weight.
		title := p.Title.TextStyle.Font.Weight
		p.Title.TextStyle.Font.Weight = xfont.WeightNormal
		defer func() { p.Title.TextStyle.Font.Weight = title }()
	default:
		return fmt.Errorf("plot %s: unknown format %q (want .svg, .png or .pdf)", path, ext)
	}
	if err := render(p, c); err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := c.WriteTo(w)
		return err
	})
}

// SaveSVGAndPNG saves p as name.svg and name.png in dir and returns the
// files written.
func SaveSVGAndPNG(p *plot.Plot, dir, name string) ([]string, error) {
	var files []string
	for _, ext := range []string{".svg", ".png"} {
		f := filepath.Join(dir, name+ext)
		if err := Save(p, f); err != nil {
			return files, err
		}
		files = append(files, f)
	}
	return files, nil
}
