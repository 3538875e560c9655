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
  'has', 'a', 'the', 'is', 'went', 'to', 'likes', 'and', 'with', 'saw', 'at', 'was', 'then', 'it', 'played', 'gave', 'found', 'now', 'of', 'again',
  'what', 'color', 'who', 'does', 'have', 'question', 'answer', '.', '?', ':',
];

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)] as T;

/**
 * One two-sentence unit of the language. The second sentence refers back to the first
 * (the same person, colour, thing or place), so pretraining rewards copying from the
 * context: the skill the question task needs, which fine-tuning then only has to point
 * at the right word.
 */
function unit(rng: Rng): string {
  const n = pick(rng, NAMES), m = pick(rng, NAMES), c = pick(rng, COLORS), t = pick(rng, THINGS), p = pick(rng, PLACES);
  switch (rng.int(8)) {
    case 0: return `${n} has a ${c} ${t} . the ${t} is ${c} .`;
    case 1: return `${n} has a ${c} ${t} . ${n} likes the ${c} ${t} .`;
    case 2: return `${n} went to the ${p} . at the ${p} ${n} was ${pick(rng, FEELINGS)} .`;
    case 3: return `${n} gave ${m} a ${c} ${t} . now ${m} has the ${t} .`;
    case 4: return `${n} played with ${m} at the ${p} . then ${m} went to the ${p} with ${n} .`;
    case 5: return `${n} found a ${pick(rng, SIZES)} ${t} at the ${p} . it was ${c} and ${n} was ${pick(rng, FEELINGS)} .`;
    case 6: return `${n} saw a ${c} ${t} . then ${n} saw it again .`;
    default: return `the ${t} of ${n} is ${c} . ${n} has the ${c} ${t} .`;
  }
}

/** `rows` pretraining texts of 2 or 3 units each. */
export function pretrainingTexts(rows: number, seed: number): string[] {
  const rng = new Rng(seed);
  return Array.from({ length: rows }, () => Array.from({ length: 2 + rng.int(2) }, () => unit(rng)).join(' '));
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
