// hcmr checkpoint page: a vehicle's verdict (a scanned trip manifest, "HCMRT1:..."), as
// POST /api/verify-manifest answers it, written into the panel's #vehicle section. app.js
// decides when; this file only fills and clears the section. Every text through textContent.
window.hcmrVehicle = (function () {
  "use strict";

  function $(id) {
    return document.getElementById(id);
  }

  var el = {
    headcount: $("headcount"),
    split: $("headcount-split"),
    facts: $("vehicle-facts"),
    plate: $("vehicle-plate"),
    route: $("vehicle-route"),
    place: $("vehicle-place"),
    times: $("vehicle-times"),
    trip: $("vehicle-trip"),
    seal: $("vehicle-seal"),
    notRechecked: $("not-rechecked"),
    notRecheckedLine: $("not-rechecked-line"),
    reasons: $("stop-reasons"),
  };

  function setText(node, text) {
    node.textContent = text == null ? "" : String(text);
  }

  function provinceText(p) {
    return p ? p.name_zh + " " + p.name_en : "";
  }

  // {code: "511304", province: {...}} -> "四川省 Sichuan 511304"
  function placeText(pl) {
    if (!pl) return "";
    return (pl.province ? provinceText(pl.province) + " " : "") + pl.code;
  }

  function clear() {
    [el.headcount, el.split, el.plate, el.route, el.place, el.times, el.trip, el.seal, el.notRechecked].forEach(
      function (n) {
        setText(n, "");
      }
    );
    while (el.reasons.firstChild) el.reasons.removeChild(el.reasons.firstChild);
    el.facts.hidden = false;
    el.notRecheckedLine.dataset.some = "";
  }

  // Fills the section from the answer `v`; `formatAge(secs)` writes an age in both languages.
  function render(v, formatAge) {
    clear();
    var shown = v.shown || {};
    if (v.pass === true) {
      setText(el.headcount, v.headcount);
      setText(
        el.split,
        "乘客 " + v.passengers + " + 乘务 " + v.crew + " · passengers " + v.passengers + " + crew " + v.crew
      );
      setText(el.seal, typeof v.seal_age_secs === "number" ? formatAge(v.seal_age_secs) : "");
      setText(
        el.notRechecked,
        v.not_rechecked + (v.not_rechecked > 0 ? " 人（以始发地登车核验为准） / people (their boarding check stands)" : "")
      );
      el.notRecheckedLine.dataset.some = v.not_rechecked > 0 ? "yes" : "";
    }
    // What a manifest that is not authentic says of itself is not shown.
    if (v.signature_verified === true) {
      setText(el.plate, v.vehicle);
      var stops = [placeText(v.origin)];
      (v.transit || []).forEach(function (p) {
        stops.push(provinceText(p));
      });
      stops.push(placeText(v.destination));
      setText(el.route, stops.join(" → "));
      setText(el.place, v.place);
      setText(el.times, "出发 departure " + (shown.departure || "") + " · 到达 arrival " + (shown.arrival || ""));
      setText(el.trip, v.trip_id + " v" + v.version);
    } else {
      el.facts.hidden = true;
    }
    (v.reasons || []).forEach(function (r) {
      var li = document.createElement("li");
      li.dataset.reason = String(r.reason || "");
      if (r.seat != null) li.dataset.seat = String(r.seat);
      var what = document.createElement("span");
      what.className = "stop-what";
      setText(what, r.explanation);
      li.appendChild(what);
      if (r.detail) {
        var detail = document.createElement("span");
        detail.className = "stop-detail";
        detail.lang = "en";
        setText(detail, r.detail);
        li.appendChild(detail);
      }
      el.reasons.appendChild(li);
    });
  }

  return { render: render, clear: clear };
})();
