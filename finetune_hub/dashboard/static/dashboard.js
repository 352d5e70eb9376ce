// The finetune_hub dashboard: reads /api/* (read-only) and redraws every few seconds.
"use strict";

const settings = window.FH_SETTINGS || {};
const state = { selected: null, chart: null };

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  if (d) return h ? `${d}d ${h}h` : `${d}d`;
  if (h) return m ? `${h}h ${m}m` : `${h}h`;
  if (m) return `${m}m`;
  return `${seconds}s`;
}

function money(value) {
  return value === null || value === undefined ? "unknown" : `$${value.toFixed(2)}`;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function drawJobs(jobs) {
  const body = document.querySelector("#jobs tbody");
  body.replaceChildren();
  document.getElementById("job-count").textContent = `(${jobs.length})`;
  document.getElementById("no-jobs").hidden = jobs.length > 0;
  for (const job of jobs) {
    const tr = document.createElement("tr");
    tr.dataset.jobId = job.id;
    if (job.id === state.selected) tr.classList.add("selected");
    cell(tr, job.id);
    cell(tr, job.provider);
    cell(tr, job.base_model);
    const status = cell(tr, "");
    const badge = document.createElement("span");
    badge.className = `status ${job.status}`;
    badge.textContent = job.status;
    status.appendChild(badge);
    if (job.guardrail) {
      const mark = document.createElement("span");
      mark.className = "mark";
      mark.textContent = job.guardrail;
      status.appendChild(mark);
      tr.classList.add("flagged");
    }
    cell(tr, duration(job.age_seconds));
    cell(tr, `${duration(job.updated_seconds)} ago`);
    const progress = cell(tr, "", "progress");
    if (job.progress.fraction !== null) {
      const bar = document.createElement("span");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.width = `${Math.round(job.progress.fraction * 100)}%`;
      bar.appendChild(fill);
      progress.appendChild(bar);
    }
    progress.appendChild(document.createTextNode(job.progress.text));
    cell(tr, job.error || job.latest_event, "event");
    tr.addEventListener("click", () => select(job.id));
    body.appendChild(tr);
  }
  if (state.selected === null || !jobs.some((j) => j.id === state.selected)) {
    const first = jobs.find((j) => j.status === "succeeded" || j.status === "running") || jobs[0];
    if (first) select(first.id);
  }
}

function drawDeployments(data) {
  const body = document.querySelector("#deployments tbody");
  body.replaceChildren();
  for (const d of data.deployments) {
    const tr = document.createElement("tr");
    tr.dataset.deploymentId = d.id;
    cell(tr, d.name);
    cell(tr, d.provider);
    cell(tr, d.model, "model");
    cell(tr, d.status);
    cell(tr, duration(Math.round(d.hours * 3600)));
    cell(tr, money(d.hourly_usd));
    cell(tr, money(d.accumulated_usd));
    cell(tr, d.expires || "never", d.expired ? "expired" : "");
    body.appendChild(tr);
  }
  const total = document.getElementById("billing-total");
  total.textContent = data.deployments.length
    ? `${data.deployments.length} billing: ${money(data.hourly_usd)}/hour now, ` +
      `${money(data.accumulated_usd)} so far` +
      (data.unknown_prices ? ` (${data.unknown_prices} at an unknown price)` : "") +
      (data.expired ? `; ${data.expired} past expiry: finetune-hub reap` : "")
    : "Nothing is billing.";
}

async function drawChart() {
  if (state.selected === null) return;
  const response = await fetch(`/api/jobs/${encodeURIComponent(state.selected)}/metrics`);
  if (!response.ok) return;
  const curve = await response.json();
  document.getElementById("chart-title").textContent = curve.job_id;
  document.getElementById("no-metrics").hidden = curve.steps.length > 0;
  const datasets = [
    { label: "training loss", data: curve.train_loss, borderColor: "#3b6fe0", tension: 0.2 },
  ];
  if (curve.valid_loss.some((v) => v !== null)) {
    datasets.push({
      label: "validation loss", data: curve.valid_loss, borderColor: "#e0793b", tension: 0.2,
    });
  }
  if (state.chart === null) {
    state.chart = new Chart(document.getElementById("loss-chart"), {
      type: "line",
      data: { labels: curve.steps, datasets },
      options: {
        animation: false,
        spanGaps: true,
        scales: { x: { title: { display: true, text: "step" } },
                  y: { title: { display: true, text: "loss" } } },
      },
    });
    window.lossChart = state.chart;
  } else {
    state.chart.data.labels = curve.steps;
    state.chart.data.datasets = datasets;
    state.chart.update();
  }
}

function select(jobId) {
  state.selected = jobId;
  for (const tr of document.querySelectorAll("#jobs tbody tr")) {
    tr.classList.toggle("selected", tr.dataset.jobId === jobId);
  }
  drawChart();
}

async function refresh() {
  try {
    const [jobs, deployments] = await Promise.all([
      fetch("/api/jobs").then((r) => r.json()),
      fetch("/api/deployments").then((r) => r.json()),
    ]);
    drawJobs(jobs.jobs);
    drawDeployments(deployments);
    await drawChart();
    document.getElementById("refreshed").textContent =
      `refreshed ${new Date().toLocaleTimeString()} (every ${settings.refreshSeconds} s)`;
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
  } catch (error) {
    document.getElementById("refreshed").textContent = `could not refresh: ${error}`;
  }
}

document.getElementById("store").textContent = settings.store || "";
refresh();
setInterval(refresh, Math.max(1, settings.refreshSeconds || 10) * 1000);
