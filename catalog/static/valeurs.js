// A dataset's values as a person reads them (table and map): the Table Schema's titles,
// French numbers and dates, « oui »/« non ». Text only: callers put it in textContent.
(function () {
  "use strict";
  const decimal = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 6 });
  const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
  const ISO_DATETIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})/;
  const TRUE_WORDS = ["true", "1", "oui", "vrai"];
  const FALSE_WORDS = ["false", "0", "non", "faux"];

  function format(value, type) {
    if (value === null || value === undefined || value === "") return "";
    if (type === "boolean" || typeof value === "boolean") {
      const word = String(value).toLowerCase();
      if (TRUE_WORDS.indexOf(word) >= 0) return "oui";
      if (FALSE_WORDS.indexOf(word) >= 0) return "non";
    }
    if (typeof value === "number") {
      // identifiers, years and codes are integers: written as they are, without grouping
      return type === "integer" ? String(value) : decimal.format(value);
    }
    if (typeof value === "object") return JSON.stringify(value);
    const text = String(value);
    let parts = null;
    if (type === "date" && (parts = ISO_DATE.exec(text))) {
      return parts[3] + "/" + parts[2] + "/" + parts[1];
    }
    if (type === "datetime" && (parts = ISO_DATETIME.exec(text))) {
      return parts[3] + "/" + parts[2] + "/" + parts[1] + " " + parts[4] + ":" + parts[5];
    }
    return text;
  }

  function title(field) {
    return field.title || field.name;
  }

  window.Valeurs = { format: format, title: title };
})();
