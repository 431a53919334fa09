// Tells the server the browser's time zone (an IANA name such as
// Europe/Berlin) in the `tz` cookie: pages then show times in that zone and
// forms read typed times in it. No other script runs on these pages.
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
