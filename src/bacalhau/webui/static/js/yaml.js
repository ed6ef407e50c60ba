// A small YAML emitter for showing a job spec: maps, lists and scalars from JSON, quoted wherever a plain scalar
// could be read as something else.

const RESERVED = /^(?:~|null|true|false|yes|no|on|off|y|n)$/i;
const NUMBER_LIKE = /^[-+]?(?:\.?\d[\d_]*(?:\.\d*)?(?:e[-+]?\d+)?|\.inf|\.nan|0x[0-9a-f]+|0o[0-7]+)$/i;
const PLAIN = /^[A-Za-z0-9_./$@(][^\n\r\t#:]*$/;

function scalar(text) {
  const plain =
    text !== '' && PLAIN.test(text) && !RESERVED.test(text) && !NUMBER_LIKE.test(text) && text.trim() === text &&
    !/[\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff]/.test(text);
  // A double-quoted JSON string is a valid YAML double-quoted scalar.
  return plain ? text : JSON.stringify(text);
}

function block(text, indent) {
  // A literal block keeps multi-line text (scripts, inline data) readable.
  if (!text.includes('\n') || /[\r\u0000-\u0008\u000b-\u001f\u007f]/.test(text) || /^\s/.test(text) || /\n\n$/.test(text) || /[ \t]\n/.test(text)) {
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
  if (value === null || typeof value !== 'object' || isEmptyContainer(value)) return inline(value, 0) + '\n';
  const lines = [];
  emit(value, 0, lines);
  return lines.join('\n') + '\n';
}
