// A small YAML emitter for showing a job spec: maps, lists and scalars from JSON, quoted wherever a plain scalar
// could be read as something else.

// YAML 1.1 (PyYAML, Go's yaml.v2) reads these plain scalars as something other than a string.
const RESERVED = /^(?:~|null|true|false|yes|no|on|off|y|n|=|<<)$/i;
const NUMBER_LIKE = /^[-+]?(?:\.?\d[\d_]*(?:\.\d*)?(?:e[-+]?\d+)?|\.inf|\.nan|0x[0-9a-f_]+|0o?[0-7_]+|0b[01_]+)$/i;
const DATE_LIKE = /^\d{4}-\d\d?-\d\d?/;
const PLAIN = /^[A-Za-z0-9_./$(][^\n\r\t#:]*$/;
// Characters a YAML reader refuses raw, or takes for line breaks: always escaped.
const SPECIAL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/;

function quoted(text) {
  // A JSON string is a YAML double-quoted scalar, once what JSON leaves raw but YAML would not read is escaped.
  return JSON.stringify(text).replace(new RegExp(SPECIAL.source, 'g'), (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function scalar(text) {
  const plain =
    text !== '' && PLAIN.test(text) && !RESERVED.test(text) && !NUMBER_LIKE.test(text) && !DATE_LIKE.test(text) &&
    text.trim() === text && !SPECIAL.test(text) && !/[\u0085\u00a0]/.test(text);
  return plain ? text : quoted(text);
}

function block(text, indent) {
  // A literal block keeps multi-line text (scripts, inline data) readable.
  if (!text.includes('\n') || text.includes('\r') || text.includes('\t') || SPECIAL.test(text) || /\u0085/.test(text) ||
    /^\s/.test(text) || /\n\n$/.test(text) || /[ \t\u00a0]\n/.test(text) || /[ \u00a0]$/.test(text)) {
    return null;
  }
  const chomp = text.endsWith('\n') ? '' : '-';
  const body = (text.endsWith('\n') ? text.slice(0, -1) : text).split('\n').map((line) => (line ? ' '.repeat(indent) + line : '')).join('\n');
  return `|${chomp}\n${body}`;
}

function key(name) {
  return scalar(String(name));
}

function isEmptyContainer(value) {
  return (Array.isArray(value) && value.length === 0) || (value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0);
}

function inline(value, indent) {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean' || typeof value === 'number') return String(value);
  if (typeof value === 'string') return block(value, indent) ?? scalar(value);
  if (Array.isArray(value)) return '[]';
  return '{}';
}

function emit(value, indent, lines) {
  const pad = ' '.repeat(indent);
  if (Array.isArray(value)) {
    for (const item of value) {
      if (item && typeof item === 'object' && !isEmptyContainer(item)) {
        const nested = [];
        emit(item, indent + 2, nested);
        lines.push(`${pad}- ${nested[0].trimStart()}`, ...nested.slice(1));
      } else {
        lines.push(`${pad}- ${inline(item, indent + 2)}`);
      }
    }
    return;
  }
  for (const [name, item] of Object.entries(value)) {
    if (item && typeof item === 'object' && !isEmptyContainer(item)) {
      lines.push(`${pad}${key(name)}:`);
      emit(item, Array.isArray(item) ? indent : indent + 2, lines);
    } else {
      lines.push(`${pad}${key(name)}: ${inline(item, indent + 2)}`);
    }
  }
}

export function toYaml(value) {
  if (value === null || typeof value !== 'object' || isEmptyContainer(value)) return inline(value, 2) + '\n';
  const lines = [];
  emit(value, 0, lines);
  return lines.join('\n') + '\n';
}
