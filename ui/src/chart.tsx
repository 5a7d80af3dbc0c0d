// A small time chart (uPlot). data-last on the container holds the newest
// value of the first series, so a test (or a curious user) can read it.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea"];

export function Chart(props: {
  title: string;
  testId: string;
  series: string[];
  data: (number | null)[][];
  unit?: string;
  // An x axis that is not time: how to label its values.
  xLabel?: (v: number) => string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const key = props.series.join("|");
  useEffect(() => {
    if (!box.current) return;
    const opts: uPlot.Options = {
      width: 520,
      height: 180,
      series: [
        {},
        ...props.series.map((label, i) => ({
          label,
          stroke: COLORS[i % COLORS.length],
          width: 2,
          spanGaps: true,
          value: (_u: uPlot, v: number | null) => (v === null ? "-" : v.toFixed(2) + (props.unit ?? "")),
        })),
      ],
      axes: [
        props.xLabel ? { values: (_u: uPlot, vals: number[]) => vals.map((v) => props.xLabel!(v)) } : {},
        { size: 60 },
      ],
      scales: { x: { time: !props.xLabel } },
    };
    plot.current = new uPlot(opts, props.data as uPlot.AlignedData, box.current);
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
  }, [key]);
  useEffect(() => {
    plot.current?.setData(props.data as uPlot.AlignedData);
  }, [props.data]);
  const first = props.data[1] ?? [];
  const last = first.length ? first[first.length - 1] : null;
  return (
    <div class="chart" data-testid={props.testId} data-last={last === null ? "" : String(last)}>
      <h3>{props.title}</h3>
      <div ref={box} />
    </div>
  );
}
