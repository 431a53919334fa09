// Tells the server the browser's time zone (an IANA name such as
// Europe/Berlin) in the `tz` cookie: pages then show times in that zone and
// forms read typed times in it.
(function () {
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  if (zone && document.cookie.split("; ").indexOf("tz=" + zone) < 0) {
    document.cookie = "tz=" + zone + "; path=/; max-age=31536000; SameSite=Lax";
  }
})();

// A keyboard-wedge scanner types the code and presses Enter: in a scan
// field, Enter moves on to the next field instead of sending the form.
document.querySelectorAll("input[data-scan]").forEach(function (input) {
  input.addEventListener("keydown", function (e) {
    if (e.key !== "Enter") {
      return;
    }
    e.preventDefault();
    var fields = Array.prototype.slice.call(input.form.querySelectorAll("input, select, textarea, button"));
    var next = fields[fields.indexOf(input) + 1];
    if (next) {
      next.focus();
    }
  });
});

// The record-result form: a measured test's value is typed, a test with
// options is answered by choosing one. When the test changes, the matching
// control is shown and the others are disabled (not sent, not required).
document.querySelectorAll("select[name=test_code]").forEach(function (select) {
  var form = select.form;
  var follow = function () {
    var withOptions = false;
    form.querySelectorAll("fieldset.value-options").forEach(function (set) {
      var on = set.getAttribute("data-test") === select.value;
      withOptions = withOptions || on;
      set.hidden = !on;
      set.disabled = !on;
    });
    var text = form.querySelector("label.value-text");
    if (text) {
      text.hidden = withOptions;
      text.querySelector("input").disabled = withOptions;
    }
  };
  select.addEventListener("change", follow);
});

// A form sent after the session ended is not saved: the server sends the
// reader to sign in (`held=1`) and then back to the form's page. What was
// typed (never a password, a file or a hidden field) is kept in this browser
// tab only, and put back into the same form for the same user to check and
// send again. Any other answer to the form clears it.
(function () {
  var KEY = "cellqc-held-form";
  var store;
  try {
    store = window.sessionStorage;
  } catch (e) {
    return;
  }
  if (!store) {
    return;
  }
  var held = null;
  try {
    held = JSON.parse(store.getItem(KEY) || "null");
  } catch (e) {
    held = null;
  }
  var body = document.body;
  var user = body.getAttribute("data-user");
  if (location.pathname === "/login") {
    if (held && new URLSearchParams(location.search).get("held") === "1") {
      held.restore = true;
      store.setItem(KEY, JSON.stringify(held));
    }
  } else if (held && held.restore && user) {
    var fresh = Date.now() - held.at < 60 * 60 * 1000;
    var form = Array.prototype.find.call(document.forms, function (f) {
      return f.getAttribute("action") === held.action;
    });
    if (!fresh || held.user !== user) {
      store.removeItem(KEY);
    } else if (form) {
      store.removeItem(KEY);
      held.fields.forEach(function (pair) {
        Array.prototype.forEach.call(form.elements, function (el) {
          if (el.name !== pair[0]) {
            return;
          }
          if (el.type === "checkbox" || el.type === "radio") {
            if (el.value === pair[1]) {
              el.checked = true;
            }
          } else if (el.tagName === "SELECT" && el.multiple) {
            Array.prototype.forEach.call(el.options, function (o) {
              if (o.value === pair[1]) {
                o.selected = true;
              }
            });
          } else if (el.type !== "password" && el.type !== "file" && el.type !== "hidden") {
            el.value = pair[1];
            el.dispatchEvent(new Event("change"));
          }
        });
      });
      var notice = document.createElement("div");
      notice.className = "notice warn";
      notice.id = "form-restored";
      notice.setAttribute("role", "status");
      notice.textContent = body.getAttribute("data-held-restored");
      form.insertBefore(notice, form.firstChild);
    }
  } else if (held) {
    store.removeItem(KEY);
  }
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var action = form.getAttribute("action");
    if ((form.getAttribute("method") || "").toLowerCase() !== "post" || !user ||
        action === "/login" || action === "/logout" || action === "/account/locale") {
      return;
    }
    var fields = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled || el.type === "password" || el.type === "file" ||
          el.type === "hidden" || el.type === "submit" || el.type === "button") {
        return;
      }
      if ((el.type === "checkbox" || el.type === "radio") && !el.checked) {
        return;
      }
      if (el.tagName === "SELECT" && el.multiple) {
        Array.prototype.forEach.call(el.selectedOptions, function (o) {
          fields.push([el.name, o.value]);
        });
        return;
      }
      fields.push([el.name, el.value]);
    });
    store.setItem(KEY, JSON.stringify({ action: action, user: user, at: Date.now(), fields: fields }));
  });
})();
