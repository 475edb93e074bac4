// adcourse: renders the widgets embedded in a static book page, without a kernel.
//
// MyST-NB embeds the state of every executed widget in the page
// (<script type="application/vnd.jupyter.widget-state+json">) and marks where each
// view goes (<script type="application/vnd.jupyter.widget-view+json">). The course's
// widgets are anywidgets: their front end is an ES module kept in the state (`_esm`),
// with its CSS (`_css`) and all the data it needs. This file gives each of them a
// small model (get / set / on / off / save_changes) and calls the module's `render`,
// exactly as anywidget does in JupyterLab; a change made in the page stays in the page.
//
// It replaces the 3.6 MB @jupyter-widgets/html-manager bundle on pages whose widgets
// are all anywidgets. A page with any other widget (an ipywidgets slider, a tqdm bar)
// loads the full manager instead: require.js, anywidget-config.js and
// html-manager/embed-amd.js, vendored next to this file by scripts/vendor_assets.py.
(function () {
  "use strict";
  var STATE = 'script[type="application/vnd.jupyter.widget-state+json"]';
  var VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]';
  // models this file renders itself; layout and style models of the base module
  // carry nothing an anywidget view reads
  var OWN = { anywidget: true, "@jupyter-widgets/base": true };
  var here = (document.currentScript && document.currentScript.src || "_static/")
    .replace(/[?#].*$/, "").replace(/[^\/]*$/, "");

  function loadScript(src, attrs) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = here + src;
      Object.keys(attrs || {}).forEach(function (k) { s.setAttribute(k, attrs[k]); });
      s.onload = resolve;
      s.onerror = function () { reject(new Error("could not load " + s.src)); };
      document.head.appendChild(s);
    });
  }

  function fullManager() {
    return loadScript("require.js")
      .then(function () { return loadScript("anywidget-config.js"); })
      .then(function () {
        // the CDN attribute points at an invalid host: a missing module fails, no request leaves
        return loadScript("html-manager/embed-amd.js", { "data-jupyter-widgets-cdn": "https://invalid.invalid/" });
      });
  }

  function StaticModel(state) {
    this.state = Object.assign({}, state);
    this.listeners = {};
  }
  StaticModel.prototype.get = function (key) { return this.state[key]; };
  StaticModel.prototype.set = function (key, value) {
    var old = this.state[key];
    this.state[key] = value;
    if (old !== value) {
      this.emit("change:" + key, value);
      this.emit("change", value);
    }
  };
  StaticModel.prototype.save_changes = function () {};  // no kernel to send to
  StaticModel.prototype.send = function () {};
  StaticModel.prototype.on = function (event, callback) {
    (this.listeners[event] = this.listeners[event] || []).push(callback);
  };
  StaticModel.prototype.off = function (event, callback) {
    if (!event) { this.listeners = {}; return; }
    if (!callback) { delete this.listeners[event]; return; }
    this.listeners[event] = (this.listeners[event] || []).filter(function (f) { return f !== callback; });
  };
  StaticModel.prototype.emit = function (event, value) {
    var self = this;
    (this.listeners[event] || []).slice().forEach(function (f) { f.call(self, self, value); });
  };

  var modules = {};  // one import per distinct front end
  var styled = {};

  function frontEnd(state) {
    var esm = state._esm;
    if (!modules[esm]) {
      // a URL (one line, no spaces) is imported as is; module source goes through a Blob
      var url = /^\s*(https?:\/\/|\.{0,2}\/)\S*\s*$/.test(esm) ? esm.trim()
        : URL.createObjectURL(new Blob([esm], { type: "text/javascript" }));
      modules[esm] = import(url).then(function (mod) {
        var widget = mod.default !== undefined ? mod.default : mod;
        return typeof widget === "function" ? widget() : widget;
      });
    }
    return modules[esm];
  }

  function renderView(view, models) {
    var spec = JSON.parse(view.textContent);
    var entry = models[spec.model_id];
    if (!entry || !view.parentElement) return Promise.resolve();
    var area = document.createElement("div");
    area.className = "widget-subarea";
    var el = document.createElement("div");
    el.className = "jupyter-widgets adc-static-widget";
    area.appendChild(el);
    view.parentElement.insertBefore(area, view);
    var state = entry.state;
    if (state._css && !styled[state._css]) {
      var style = document.createElement("style");
      style.textContent = state._css;
      document.head.appendChild(style);
      styled[state._css] = true;
    }
    var model = entry.model || (entry.model = new StaticModel(state));
    return frontEnd(state).then(function (widget) {
      var init = entry.initialized || (entry.initialized = Promise.resolve(
        widget.initialize ? widget.initialize({ model: model }) : undefined));
      return init.then(function () { return widget.render({ model: model, el: el }); });
    }).catch(function (err) {
      el.textContent = "This widget could not be shown (" + err + ").";
      console.error("adcourse static widgets:", err);
    });
  }

  function renderAll() {
    var models = {};
    var foreign = false;
    document.querySelectorAll(STATE).forEach(function (script) {
      var all = JSON.parse(script.textContent).state || {};
      Object.keys(all).forEach(function (id) {
        var m = all[id];
        if (!OWN[m.model_module]) foreign = true;
        if (m.model_module === "anywidget") models[id] = { state: m.state };
      });
    });
    if (foreign) return fullManager();
    var views = Array.prototype.slice.call(document.querySelectorAll(VIEW));
    return Promise.all(views.map(function (v) { return renderView(v, models); }));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", renderAll);
  else renderAll();
})();
