/*
 * journeys forms.js: renders a journeys form into a <div> and reports it, for sites without a
 * form builder. Plain JavaScript, no build step, no dependencies.
 *
 *   <div data-journeys-form="demo" data-key="jrn_browser_..." data-lead-source="website"></div>
 *   <script src="https://api.example.com/js/forms.js" async></script>
 *
 * The API is the host the script came from (or data-api="https://..."). The key is a browser key
 * whose origins include this page's. The form posts cross-origin with the key; a half-filled
 * form that has an email is reported as abandoned when the visitor leaves (sendBeacon). If
 * Segment's library is on the page, its anonymousId joins the form to the visitor's history.
 *
 * The element gets data-state: loading, ready, sending, submitted, invalid, error.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var scriptApi = script && script.src ? new URL(script.src).origin : "";
  var REFRESH_AFTER_MS = 60 * 60 * 1000; // a fill token older than this is fetched anew

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (attrs[name] !== null && attrs[name] !== undefined && attrs[name] !== false) {
        node.setAttribute(name, attrs[name] === true ? "" : attrs[name]);
      }
    });
    if (text) node.textContent = text;
    return node;
  }

  function randomId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "f-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }

  function anonymousId() {
    try {
      var analytics = window.analytics;
      if (analytics && typeof analytics.user === "function") {
        var id = analytics.user().anonymousId();
        if (id) return String(id);
      }
      var stored = window.localStorage && localStorage.getItem("ajs_anonymous_id");
      if (stored) return JSON.parse(stored);
    } catch (ignored) {
      /* no storage, or not Segment's: the form stands alone */
    }
    var match = document.cookie.match(/(?:^|;\s*)ajs_anonymous_id=([^;]+)/);
    return match ? decodeURIComponent(match[1]).replace(/^"|"$/g, "") : null;
  }

  function JourneysForm(container) {
    this.container = container;
    this.formId = container.getAttribute("data-journeys-form");
    this.key = container.getAttribute("data-key");
    this.api = (container.getAttribute("data-api") || scriptApi).replace(/\/$/, "");
    this.leadSource = container.getAttribute("data-lead-source") || "website";
    this.idempotencyKey = randomId();
    this.touched = false;
    this.done = false;
    this.definition = null;
    this.fetchedAt = 0;
  }

  JourneysForm.prototype.state = function (state, message) {
    this.container.setAttribute("data-state", state);
    if (this.status) this.status.textContent = message || "";
  };

  JourneysForm.prototype.fetchDefinition = function () {
    var self = this;
    return fetch(this.api + "/v1/forms/" + encodeURIComponent(this.formId), {
      headers: { Authorization: "Bearer " + this.key },
    }).then(function (response) {
      if (!response.ok) {
        return response.json().then(function (body) {
          throw new Error(response.status + " " + (body.detail || ""));
        });
      }
      return response.json().then(function (definition) {
        self.definition = definition;
        self.fetchedAt = Date.now();
        return definition;
      });
    });
  };

  JourneysForm.prototype.load = function () {
    var self = this;
    this.state("loading");
    return this.fetchDefinition()
      .then(function (definition) {
        self.render(definition);
        self.state("ready");
      })
      .catch(function (error) {
        self.container.textContent = "This form cannot be shown right now.";
        self.container.setAttribute("data-error", String(error.message || error));
        self.state("error");
      });
  };

  JourneysForm.prototype.render = function (definition) {
    var self = this;
    var form = el("form", { class: "journeys-form", novalidate: true, "data-form-id": definition.form_id });
    form.appendChild(el("h3", { class: "journeys-form-title" }, definition.name));
    definition.fields.forEach(function (field) {
      var id = "jf-" + definition.form_id + "-" + field.name;
      var row = el("div", { class: "journeys-field", "data-field": field.name });
      row.appendChild(el("label", { for: id }, field.label + (field.required ? " *" : "")));
      row.appendChild(
        el("input", {
          id: id,
          name: field.name,
          type: field.type,
          autocomplete: field.autocomplete,
          required: field.required,
        })
      );
      row.appendChild(el("small", { class: "journeys-error", "aria-live": "polite" }));
      form.appendChild(row);
    });
    var consentId = "jf-" + definition.form_id + "-consent";
    var consent = el("div", { class: "journeys-consent" });
    consent.appendChild(el("input", { id: consentId, name: definition.consent.name, type: "checkbox" }));
    consent.appendChild(el("label", { for: consentId }, definition.consent.text));
    form.appendChild(consent);
    // The honeypot: off screen and out of the tab order, so only a bot fills it.
    var trap = el("div", { "aria-hidden": "true", style: "position:absolute;left:-10000px;top:auto;" });
    trap.appendChild(
      el("input", { name: definition.bot_protection.honeypot, type: "text", tabindex: "-1", autocomplete: "off" })
    );
    form.appendChild(trap);
    form.appendChild(el("button", { type: "submit", class: "journeys-submit" }, "Send"));
    this.status = el("p", { class: "journeys-status", role: "status" });
    form.appendChild(this.status);
    form.addEventListener("input", function () {
      self.touched = true;
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.submit();
    });
    this.form = form;
    this.container.textContent = "";
    this.container.appendChild(form);
  };

  JourneysForm.prototype.values = function () {
    var values = {};
    var definition = this.definition;
    definition.fields.forEach(function (field) {
      var value = this.form.elements[field.name].value.trim();
      if (value) values[field.name] = value;
    }, this);
    values[definition.consent.name] = this.form.elements[definition.consent.name].checked;
    var trap = this.form.elements[definition.bot_protection.honeypot].value;
    if (trap) values[definition.bot_protection.honeypot] = trap;
    values[definition.bot_protection.token_field] = definition.bot_protection.token;
    values.lead_source = this.leadSource;
    var query = new URLSearchParams(window.location.search);
    ["utm_source", "utm_medium", "utm_campaign"].forEach(function (name) {
      if (query.get(name)) values[name] = query.get(name);
    });
    var visitor = anonymousId();
    if (visitor) values.anonymous_id = visitor;
    return values;
  };

  JourneysForm.prototype.showErrors = function (detail) {
    var form = this.form;
    Array.prototype.forEach.call(form.querySelectorAll(".journeys-field"), function (row) {
      row.removeAttribute("data-invalid");
      row.querySelector(".journeys-error").textContent = "";
    });
    (Array.isArray(detail) ? detail : []).forEach(function (error) {
      var name = error.loc && error.loc[error.loc.length - 1];
      var row = form.querySelector('.journeys-field[data-field="' + name + '"]');
      if (row) {
        row.setAttribute("data-invalid", "");
        row.querySelector(".journeys-error").textContent = error.msg;
      }
    });
  };

  JourneysForm.prototype.submit = function () {
    var self = this;
    var fresh =
      Date.now() - this.fetchedAt > REFRESH_AFTER_MS ? this.fetchDefinition() : Promise.resolve(this.definition);
    this.state("sending", "Sending…");
    return fresh
      .then(function () {
        return fetch(self.api + self.definition.submit, {
          method: "POST",
          headers: {
            Authorization: "Bearer " + self.key,
            "Content-Type": "application/json",
            "Idempotency-Key": self.idempotencyKey,
          },
          body: JSON.stringify(self.values()),
        });
      })
      .then(function (response) {
        return response.json().then(function (body) {
          if (response.status === 202) {
            self.done = true;
            self.container.setAttribute("data-lead-id", body.lead_id || "");
            self.form.replaceWith(el("p", { class: "journeys-thanks" }, "Thank you, we will be in touch."));
            self.state("submitted");
          } else if (response.status === 422) {
            self.showErrors(body.detail);
            self.state("invalid", "Please check the fields marked.");
          } else {
            self.state("error", "Something went wrong; please try again in a moment.");
          }
        });
      })
      .catch(function () {
        self.state("error", "Something went wrong; please try again in a moment.");
      });
  };

  // A visitor leaving a form they began, with an email in it: reported once, by sendBeacon
  // (it outlives the page; text/plain needs no preflight, so the key rides in the query).
  JourneysForm.prototype.reportAbandonment = function () {
    if (this.done || !this.touched || !this.form) return;
    var values = this.values();
    if (!values.email) return;
    this.done = true;
    var url = this.api + this.definition.abandon + "?key=" + encodeURIComponent(this.key);
    var body = JSON.stringify(values);
    if (navigator.sendBeacon && navigator.sendBeacon(url, new Blob([body], { type: "text/plain" }))) {
      this.container.setAttribute("data-abandonment", "sent");
      return;
    }
    fetch(url, { method: "POST", body: body, keepalive: true, headers: { "Content-Type": "text/plain" } });
    this.container.setAttribute("data-abandonment", "sent");
  };

  var forms = [];
  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-journeys-form]"), function (container) {
      if (container.journeysForm) return;
      var form = new JourneysForm(container);
      container.journeysForm = form;
      forms.push(form);
      form.load();
    });
  }
  function leaving() {
    forms.forEach(function (form) {
      form.reportAbandonment();
    });
  }
  window.addEventListener("pagehide", leaving);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") leaving();
  });
  window.journeysForms = { start: start, forms: forms };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
