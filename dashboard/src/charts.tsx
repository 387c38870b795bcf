// The overview's charts (recharts, drawn as SVG). Each sits in a role="img" container whose label says in words what
// the chart shows, since a screen reader cannot read the drawing; the SVG itself stays out of the tab order.
import type { ReactNode } from "react";
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, Tooltip, XAxis, YAxis } from "recharts";
import type { Bucket, OverviewBucket, OverviewTotals } from "./api-types.ts";
import { formatBucket, formatBucketLong } from "./format.ts";

export function ChartFrame({ label, height, children }: { label: string; height: number; children: ReactNode }) {
  return (
    <div className="chart" role="img" aria-label={label} style={{ height }}>
      {children}
    </div>
  );
}

type Metric = keyof OverviewTotals;

export interface Series {
  metric: Metric;
  name: string;
  /** A CSS colour; the palette's variables follow the light or dark scheme. */
  color: string;
}

const axisTick = { fill: "var(--muted)", fontSize: 12 };
const tooltipStyle = {
  background: "var(--surface)",
  border: "1px solid var(--border)",
  borderRadius: 6,
  color: "var(--text)",
};
const chartStyle = { width: "100%", height: "100%" };

/** A metric per hour or day: bars for amounts, lines for latencies (an empty bucket is a gap, not a zero). */
export function TimeChart(props: {
  label: string;
  data: OverviewBucket[];
  bucket: Bucket;
  series: Series[];
  kind: "bar" | "line";
  format: (value: number) => string;
  /** The value axis's ticks, when they need another format than the tooltip. */
  tickFormat?: (value: number) => string;
  /** Counts: whole-number ticks only (rounded fractional ticks would repeat, as in 0, 1, 2, 2, 3). */
  integer?: boolean;
  height?: number;
}) {
  const { data, bucket, series, format } = props;
  const height = props.height ?? 220;
  const xAxis = (
    <XAxis
      dataKey="start"
      tickFormatter={(value: string) => formatBucket(value, bucket)}
      tick={axisTick}
      stroke="var(--border)"
      minTickGap={24}
    />
  );
  const yAxis = (
    <YAxis
      tickFormatter={props.tickFormat ?? format}
      tick={axisTick}
      stroke="var(--border)"
      width={72}
      allowDecimals={!props.integer}
    />
  );
  const tooltip = (
    <Tooltip
      contentStyle={tooltipStyle}
      cursor={{ fill: "var(--hover)", stroke: "var(--border)" }}
      labelFormatter={(label) => (typeof label === "string" ? formatBucketLong(label, bucket) : label)}
      formatter={(value) => (typeof value === "number" ? format(value) : "—")}
    />
  );
  const grid = <CartesianGrid stroke="var(--grid)" vertical={false} />;
  return (
    <ChartFrame label={props.label} height={height}>
      {props.kind === "bar" ? (
        <BarChart data={data} responsive style={chartStyle} accessibilityLayer={false}>
          {grid}
          {xAxis}
          {yAxis}
          {tooltip}
          {series.map((line) => (
            <Bar
              key={line.metric}
              dataKey={line.metric}
              name={line.name}
              fill={line.color}
              isAnimationActive={false}
              radius={[3, 3, 0, 0]}
            />
          ))}
        </BarChart>
      ) : (
        <LineChart data={data} responsive style={chartStyle} accessibilityLayer={false}>
          {grid}
          {xAxis}
          {yAxis}
          {tooltip}
          {series.length > 1 && <Legend wrapperStyle={{ color: "var(--text)" }} />}
          {series.map((line) => (
            <Line
              key={line.metric}
              dataKey={line.metric}
              name={line.name}
              stroke={line.color}
              strokeWidth={2}
              dot={data.length <= 31}
              connectNulls={false}
              isAnimationActive={false}
            />
          ))}
        </LineChart>
      )}
    </ChartFrame>
  );
}

export interface GroupBar {
  name: string;
  value: number;
}

/** One horizontal bar per model, provider, type or user, most first. */
export function GroupChart(props: {
  label: string;
  data: GroupBar[];
  name: string;
  format: (value: number) => string;
}) {
  const height = Math.max(120, props.data.length * 30 + 48);
  return (
    <ChartFrame label={props.label} height={height}>
      <BarChart data={props.data} layout="vertical" responsive style={chartStyle} accessibilityLayer={false}>
        <CartesianGrid stroke="var(--grid)" horizontal={false} />
        <XAxis
          type="number"
          tickFormatter={props.format}
          tick={axisTick}
          stroke="var(--border)"
          allowDecimals={false}
        />
        <YAxis type="category" dataKey="name" tick={axisTick} stroke="var(--border)" width={140} />
        <Tooltip
          contentStyle={tooltipStyle}
          cursor={{ fill: "var(--hover)" }}
          formatter={(value) => (typeof value === "number" ? props.format(value) : "—")}
        />
        <Bar dataKey="value" name={props.name} fill="var(--chart-1)" isAnimationActive={false} radius={[0, 3, 3, 0]} />
      </BarChart>
    </ChartFrame>
  );
}
