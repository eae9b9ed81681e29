// Small helpers of the review page's scripts (review.ts, chart.ts, ocean.ts): elements by id,
// elements and SVG nodes built from properties, and the colours of the charts' lines.

/** The element with this id; the page's HTML has every id this script asks for. */
export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

/** Element properties: "class", "text", "on<event>" handlers, and attributes. */
export type Props = Record<string, string | ((e: Event) => void)>;

export function el(tag: string, props: Props = {}, ...children: (Node | string | null | undefined)[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** SVG nodes made by mk(tag, attributes, text), collected in order for one replaceChildren(). */
export function svgNodes(): { nodes: SVGElement[]; mk: (tag: string, attrs: Record<string, string | number>, text?: string) => void } {
  const nodes: SVGElement[] = [];
  return {
    nodes,
    mk: (tag, attrs, text) => {
      const n = document.createElementNS(SVG_NS, tag);
      for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
      if (text !== undefined) n.textContent = text;
      nodes.push(n);
    },
  };
}

/** The colours of the lines of a chart, the i-th line's first. */
export const COLORS = ['#4cc3ff', '#ffb347', '#7ee081', '#ff7b9c', '#c49bff', '#f5e663', '#8a9ba8'];

export const color = (i: number): string => COLORS[i % COLORS.length]!;
