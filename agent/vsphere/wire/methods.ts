import type { vimMethods } from './schema.ts';
import type { Moref, VimObject } from './serialize.ts';
import type { XmlNode } from './xml.ts';

/**
 * The vim25 methods this project calls, typed from their schema (schema.ts), as govmomi's
 * `vim25/methods` types each call: a misspelt method or parameter, or a value of the wrong kind,
 * fails to compile instead of failing at a vCenter.
 */
export type VimMethod = keyof typeof vimMethods;

interface Primitives {
  readonly string: string;
  readonly int: number;
  readonly long: number | bigint;
  readonly short: number;
  readonly byte: number;
  readonly boolean: boolean;
  readonly dateTime: string;
  readonly MOR: Moref;
  /** Passed through as it was parsed (an ImportSpec from CreateImportSpec, a fault). */
  readonly any: XmlNode | VimObject;
}

type ValueOf<T extends string> = T extends keyof Primitives ? Primitives[T] : VimObject;

type FieldValue<F> = F extends { readonly type: infer T extends string; readonly array: true }
  ? readonly ValueOf<T>[]
  : F extends { readonly type: infer T extends string }
    ? ValueOf<T>
    : never;

type Params<M extends VimMethod> = (typeof vimMethods)[M][number];

/** The arguments of method `M`: `_this` always, the others as the schema allows (all optional here). */
export type VimArgs<M extends VimMethod> = { readonly _this: Moref } & {
  readonly [F in Params<M> as F['name'] extends '_this' ? never : F['name']]?: FieldValue<F>;
};
