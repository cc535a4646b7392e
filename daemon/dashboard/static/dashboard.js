// The dashboard's little script: run-duration charts (uPlot) and a result's surroundings,
// fetched when its "Around it" is opened. Everything else is plain server-rendered HTML.
"use strict";

function drawCharts() {
  if (typeof uPlot === "undefined") return;
  for (const box of document.querySelectorAll("[data-chart]")) {
    const data = JSON.parse(box.nextElementSibling.textContent);
    const width = Math.max(320, box.clientWidth || 600);
    new uPlot({
      width: width,
      height: 160,
      legend: { show: false },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max * 1.15, 0.001)] } },
      axes: [{}, { label: "s", size: 50 }],
      series: [
        {},
        { label: data.job + " (s)", stroke: "#3266c8", width: 1.5, fill: "rgba(50,102,200,0.08)",
          points: { show: true, size: 4 } },
      ],
    }, [data.x, data.y], box);
    box.dataset.drawn = "1";
  }
}

function loadContextOnOpen() {
  for (const details of document.querySelectorAll("details.context[data-src]")) {
    details.addEventListener("toggle", async () => {
      if (!details.open || details.dataset.loaded) return;
      details.dataset.loaded = "1";
      const body = details.querySelector(".context-body");
      try {
        const answer = await fetch(details.dataset.src, { headers: { "X-Fragment": "1" } });
        body.innerHTML = await answer.text();
      } catch (err) {
        body.textContent = "Could not load it: " + err;
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  drawCharts();
  loadContextOnOpen();
});
