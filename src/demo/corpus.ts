// The demo's self-made data, deterministic from a seed: a tiny synthetic language
// (people, colours, things, places, simple sentences) for pretraining a small base
// model, and an instruction task over it that the base cannot do because it has never
// seen a question: "sam has a red ball . what color is it ?" -> "red" (and "who has it ?",
// "what does sam have ?"). Answering means copying the right span of the sentence, which a
// small transformer learns from a few hundred examples and applies to unseen sentences.
import { Rng } from '../util/rng.js';

export const NAMES = ['sam', 'mia', 'tom', 'ana', 'leo', 'zoe', 'max', 'ivy', 'ben', 'eva', 'kai', 'lia'] as const;
export const COLORS = ['red', 'blue', 'green', 'yellow', 'black', 'white', 'pink', 'brown'] as const;
export const THINGS = ['ball', 'cup', 'hat', 'kite', 'box', 'book', 'car', 'boat', 'bag', 'drum', 'lamp', 'sock'] as const;
export const PLACES = ['park', 'shop', 'school', 'beach', 'farm', 'lake', 'zoo', 'town'] as const;
const SIZES = ['big', 'small', 'old', 'new'] as const;
const FEELINGS = ['happy', 'sad', 'tired', 'glad'] as const;

/** Every word the generator writes, the template's words and punctuation (the tokenizer's vocabulary). */
export const WORDS: readonly string[] = [
  ...NAMES, ...COLORS, ...THINGS, ...PLACES, ...SIZES, ...FEELINGS,
  'has', 'a', 'the', 'is', 'went', 'to', 'likes', 'and', 'with', 'saw', 'at', 'was', 'then', 'it', 'played', 'gave', 'found',
  'what', 'color', 'who', 'does', 'have', 'question', 'answer', '.', '?', ':',
];

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)] as T;

/** One sentence of the language (words and punctuation separated by spaces). */
function sentence(rng: Rng): string {
  const n = pick(rng, NAMES), m = pick(rng, NAMES), c = pick(rng, COLORS), t = pick(rng, THINGS), p = pick(rng, PLACES);
  switch (rng.int(9)) {
    case 0: return `${n} has a ${c} ${t} .`;
    case 1: return `the ${t} is ${c} .`;
    case 2: return `${n} went to the ${p} .`;
    case 3: return `${n} likes the ${c} ${t} .`;
    case 4: return `${n} played with ${m} at the ${p} .`;
    case 5: return `${n} gave ${m} a ${pick(rng, SIZES)} ${t} .`;
    case 6: return `${n} was ${pick(rng, FEELINGS)} .`;
    case 7: return `${n} found a ${c} ${t} at the ${p} .`;
    default: return `${n} saw the ${pick(rng, SIZES)} ${t} and then it was ${c} .`;
  }
}

/** `rows` pretraining texts of 3 to 6 sentences each. */
export function pretrainingTexts(rows: number, seed: number): string[] {
  const rng = new Rng(seed);
  return Array.from({ length: rows }, () => Array.from({ length: 3 + rng.int(4) }, () => sentence(rng)).join(' '));
}

export interface QaRow {
  prompt: string;
  completion: string;
}

/** One question about one "NAME has a COLOR THING ." sentence. */
function qaRow(rng: Rng): QaRow {
  const n = pick(rng, NAMES), c = pick(rng, COLORS), t = pick(rng, THINGS);
  const fact = `${n} has a ${c} ${t} .`;
  switch (rng.int(3)) {
    case 0: return { prompt: `${fact} what color is it ?`, completion: c };
    case 1: return { prompt: `${fact} who has it ?`, completion: n };
    default: return { prompt: `${fact} what does ${n} have ?`, completion: `a ${c} ${t}` };
  }
}

/**
 * `train` and `eval` question rows; no evaluation prompt appears in the training rows
 * (there are 12 x 8 x 12 x 3 = 3456 distinct questions), so exact match measures the
 * skill, not memory.
 */
export function instructionTask(train: number, evalRows: number, seed: number): { train: QaRow[]; eval: QaRow[] } {
  const rng = new Rng(seed);
  const seen = new Set<string>();
  const draw = (n: number): QaRow[] => {
    const out: QaRow[] = [];
    while (out.length < n) {
      const r = qaRow(rng);
      if (seen.has(r.prompt)) continue;
      seen.add(r.prompt);
      out.push(r);
    }
    return out;
  };
  const evalSet = draw(evalRows);
  return { train: draw(train), eval: evalSet };
}
