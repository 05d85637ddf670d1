// soilnet map viewer: layers from /api/layers, tiles from /tiles, values from /api/value, points from /api/points.
// The body's data-tiles ("loading" | "loaded") and data-values ("loading" | "ready") tell tests what is drawn.
"use strict";

const state = { summary: null, map: null, tiles: null, layer: null, points: null, marker: null };

function fmt(value, decimals) {
  return value === null || value === undefined ? "no data" : Number(value).toFixed(decimals);
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function unitText(layer) {
  return layer.unit ? ` (${layer.unit})` : "";
}

function drawLegend(layer) {
  const box = document.getElementById("legend");
  box.replaceChildren(el("div", { class: "legend-title" }, layer.title + unitText(layer)));
  if (layer.description) box.append(el("div", { class: "unit" }, layer.description));
  if (layer.kind === "classes") {
    for (const c of layer.classes) {
      const row = el("div", { "data-class": String(c.value) });
      row.append(el("span", { class: "swatch", style: `background:${c.colour}` }), c.label);
      box.append(row);
    }
    return;
  }
  box.append(el("div", { class: "bar", style: `background:linear-gradient(to right, ${layer.stops.join(",")})` }));
  const ticks = el("div", { class: "ticks" });
  for (let i = 0; i <= 4; i++) {
    const v = layer.vmin + ((layer.vmax - layer.vmin) * i) / 4;
    ticks.append(el("span", { "data-tick": String(v) }, fmt(v, layer.decimals)));
  }
  box.append(ticks);
  box.append(el("div", { class: "unit" }, `values beyond the ends are drawn in the end colours${unitText(layer)}`));
}

function showLayer(name) {
  const layer = state.summary.layers.find((l) => l.name === name);
  if (state.tiles) state.map.removeLayer(state.tiles);
  const [w, s, e, n] = layer.bounds;
  state.tiles = L.tileLayer(`/tiles/${encodeURIComponent(name)}/{z}/{x}/{y}.png`, {
    bounds: L.latLngBounds([s, w], [n, e]),
    tileSize: state.summary.tile_px,
    zoomOffset: 0,
    maxZoom: 22,
    opacity: 0.9,
  });
  state.tiles.on("loading", () => (document.body.dataset.tiles = "loading"));
  state.tiles.on("load", () => (document.body.dataset.tiles = "loaded"));
  state.tiles.addTo(state.map);
  state.layer = name;
  drawLegend(layer);
}

async function showValues(latlng) {
  document.body.dataset.values = "loading";
  const lon = latlng.lng, lat = latlng.lat;
  const reply = await fetch(`/api/value?lon=${lon}&lat=${lat}`);
  const data = await reply.json();
  const box = document.getElementById("values");
  box.hidden = false;
  box.dataset.lon = String(lon);
  box.dataset.lat = String(lat);
  document.getElementById("where").textContent = `${lat.toFixed(5)}° N, ${lon.toFixed(5)}° E`;
  const body = box.querySelector("tbody");
  body.replaceChildren();
  for (const v of data.values) {
    const layer = state.summary.layers.find((l) => l.name === v.layer);
    const row = el("tr", { "data-layer": v.layer });
    const shown = v.label !== undefined ? v.label : fmt(v.value, layer.decimals);
    row.append(el("td", {}, layer.title), el("td", { class: "value" }, shown), el("td", { class: "unit" }, v.unit));
    body.append(row);
  }
  if (state.marker) state.marker.remove();
  state.marker = L.circleMarker(latlng, { radius: 5, color: "#000", weight: 2, fill: false, interactive: false });
  state.marker.addTo(state.map);
  document.body.dataset.values = "ready";
}

function pointPopup(props) {
  const rows = Object.entries(props.values).map(([k, v]) => `${k}: ${v === null ? "–" : v}`);
  return [`<b>${props.id}</b> (${props.source}, ${props.date})`, `depth ${props.depth_top_cm}–${props.depth_bottom_cm} cm`, ...rows].join("<br>");
}

async function drawPoints() {
  if (!state.points || !document.getElementById("show-points").checked) return;
  const b = state.map.getBounds();
  const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].join(",");
  const reply = await fetch(`/api/points?bbox=${bbox}&zoom=${state.map.getZoom()}`);
  const data = await reply.json();
  state.points.clearLayers();
  for (const f of data.features) {
    const [lon, lat] = f.geometry.coordinates;
    if (f.properties.cluster) {
      const n = f.properties.count, size = Math.round(18 + 6 * Math.log10(n));
      const html = `<div style="line-height:${size - 4}px">${n}</div>`;
      const icon = L.divIcon({ className: "cluster", html, iconSize: [size, size] });
      const marker = L.marker([lat, lon], { icon, title: `${n} points` });
      marker.on("click", () => state.map.setView([lat, lon], state.map.getZoom() + 2));
      state.points.addLayer(marker);
    } else {
      const style = { radius: 4, color: "#fff", weight: 1, fillColor: "#d53e4f", fillOpacity: 1, bubblingMouseEvents: false };
      state.points.addLayer(L.circleMarker([lat, lon], style).bindPopup(pointPopup(f.properties)));
    }
  }
  document.getElementById("points-count").textContent = `(${data.total} in view${data.clustered ? ", clustered" : ""})`;
}

async function start() {
  state.summary = await (await fetch("/api/layers")).json();
  document.getElementById("source").textContent = state.summary.source;
  const [w, s, e, n] = state.summary.bounds;
  state.map = L.map("map", { zoomSnap: 1, attributionControl: false });
  state.map.fitBounds([[s, w], [n, e]]);
  const box = document.getElementById("layers");
  state.summary.layers.forEach((layer, i) => {
    const input = el("input", { type: "radio", name: "layer", value: layer.name });
    input.checked = i === 0;
    input.addEventListener("change", () => showLayer(layer.name));
    const label = el("label", { "data-layer": layer.name });
    label.append(input, ` ${layer.title}`, el("span", { class: "unit" }, unitText(layer)));
    box.append(label);
  });
  showLayer(state.summary.layers[0].name);
  if (state.summary.points) {
    state.points = L.layerGroup().addTo(state.map);
    document.getElementById("points-toggle").hidden = false;
    document.getElementById("show-points").addEventListener("change", (ev) => {
      if (ev.target.checked) drawPoints(); else state.points.clearLayers();
    });
    state.map.on("moveend", drawPoints);
    drawPoints();
  }
  state.map.on("click", (ev) => showValues(ev.latlng));
}

start();
