import { z } from 'zod';
import { itemStates, transferPhases } from './phases.ts';
import { signedStatementSchema } from './transfer-key.ts';

/** Ids are URL- and path-safe: they name folders on the NAS and appear in Slack buttons. */
export const idSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{2,62}$/,
    'use 3-63 lowercase letters, digits and dashes, starting with a letter or digit',
  );

/** The one rule for site names, in words (Slack, the CLI, the admin and agent APIs all apply it). */
export const siteNameRule =
  'a site name is 3-63 lowercase letters, digits and dashes, starting with a letter or digit (e.g. acme-hq)';

/**
 * A site: it names the agents' tenancy, appears in task routing and in paths, so one rule holds
 * everywhere a site name comes in (issue #18).
 */
export const siteSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{2,62}$/, siteNameRule);

export const itemKinds = ['vm', 'template', 'vapp'] as const;
export type ItemKind = (typeof itemKinds)[number];

/** How vCloud Director takes the imported VM (DESIGN.md, "vSphere and vCloud Director"). */
export const placements = ['vapp', 'existing-vapp', 'catalog'] as const;
export type Placement = (typeof placements)[number];

const nameSchema = z.string().trim().min(1, 'must not be empty').max(255, 'at most 255 characters');

/**
 * Where and how an item lands. `deploy` means "run it": for placement vapp / existing-vapp the
 * vApp is deployed; for placement catalog the template stays in the catalog AND a vApp is
 * instantiated from it in the VDC (on `network`). `deploy` defaults to true, except for placement
 * catalog, where it defaults to `powerOn` (a template alone stays a template). `powerOn` (default
 * false) needs deploy.
 */
export const itemTargetSchema = z
  .object({
    vdc: nameSchema.describe('target org VDC'),
    placement: z.enum(placements).default('vapp'),
    vapp: nameSchema.optional().describe('existing vApp, for placement existing-vapp'),
    catalog: nameSchema.optional().describe('catalog, for placement catalog'),
    network: nameSchema.optional().describe('org VDC network the NICs connect to'),
    deploy: z
      .boolean()
      .optional()
      .describe('deploy the vApp; for placement catalog: also instantiate a vApp from the template'),
    powerOn: z.boolean().default(false),
  })
  .superRefine((t, ctx) => {
    if (t.placement === 'catalog' && !t.catalog) {
      ctx.addIssue({
        code: 'custom',
        path: ['catalog'],
        message: 'placement "catalog" needs a catalog name',
      });
    }
    if (t.placement === 'existing-vapp' && !t.vapp) {
      ctx.addIssue({
        code: 'custom',
        path: ['vapp'],
        message: 'placement "existing-vapp" needs the vApp name',
      });
    }
    if (t.powerOn && t.deploy === false) {
      ctx.addIssue({
        code: 'custom',
        path: ['powerOn'],
        message: 'powerOn needs deploy: true (or leave deploy out)',
      });
    }
  })
  .transform((t) => ({ ...t, deploy: t.deploy ?? (t.placement !== 'catalog' || t.powerOn) }));
export type ItemTarget = z.infer<typeof itemTargetSchema>;

/**
 * What an imported item is called where it landed: each of its VMs in the provider's vCenter (a
 * vApp: its members), and its vApp or catalog template in vCloud Director once onboarded. Two items
 * of one name get names told apart by the item id (docs/decisions.md, "Imported VM names").
 */
export const placedNamesSchema = z.object({
  vcenter: z.array(z.string().min(1).max(255)).max(100),
  vcd: z.string().min(1).max(255).optional(),
});
export type PlacedNames = z.infer<typeof placedNamesSchema>;

/**
 * Set by the export (issue #21): how the item was read, `live, from snapshot at <time>,
 * quiesced|crash-consistent` or `cold (powered off)`, and whether a later delta sync can start
 * from the package (every disk's changeId recorded in transfer.json).
 */
export const exportCaptureSchema = z.object({
  read: z.string().min(1).max(200),
  deltaSync: z.boolean(),
});
export type ExportCapture = z.infer<typeof exportCaptureSchema>;

export const itemResultSchema = z.object({
  state: z.enum(itemStates),
  /** Why the item failed, in words a person can act on. */
  reason: z.string().optional(),
  /** Stable error code of the failure, when there is one. */
  code: z.string().optional(),
  bytes: z.number().int().nonnegative().default(0),
  /** Set by the import: where the item's VMs are, by name (kept through later states). */
  names: placedNamesSchema.optional(),
  /** Set by the export: how it was read and whether it can be delta-synced (kept through later states). */
  capture: exportCaptureSchema.optional(),
  updatedAt: z.iso.datetime(),
});
export type ItemResult = z.infer<typeof itemResultSchema>;

export const itemSchema = z.object({
  id: idSchema,
  kind: z.enum(itemKinds),
  /** Name or inventory path in the customer's vCenter. */
  source: nameSchema,
  sizeBytes: z.number().int().nonnegative().optional(),
  target: itemTargetSchema,
  result: itemResultSchema,
});
export type Item = z.infer<typeof itemSchema>;

export const shippingSchema = z.object({
  carrier: nameSchema,
  tracking: nameSchema,
});
export type Shipping = z.infer<typeof shippingSchema>;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 in lowercase hex');

/**
 * One line of the custody log: who or what acted (a person's id, `workflow`, an agent), what, when;
 * chained by `prev` and `hash` (core/model/custody.ts). Entries written before the chain have neither.
 */
export const historyEntrySchema = z.object({
  at: z.iso.datetime(),
  actor: nameSchema,
  phase: z.enum(transferPhases),
  note: z.string().optional(),
  /** The hash of the entry before (64 zeros for the first). */
  prev: sha256Hex.optional(),
  /** SHA-256 of this entry's canonical encoding (custody.ts `canonicalEntry`). */
  hash: sha256Hex.optional(),
});
export type HistoryEntry = z.infer<typeof historyEntrySchema>;

export const transferSchema = z.object({
  id: idSchema,
  /** Customer site whose export agent exports the items. */
  site: siteSchema,
  /** Provider site whose ODT node imports them. */
  providerSite: siteSchema,
  requester: nameSchema,
  phase: z.enum(transferPhases),
  items: z.array(itemSchema).min(1),
  approver: nameSchema.optional(),
  rejectReason: z.string().optional(),
  shipping: shippingSchema.optional(),
  history: z.array(historyEntrySchema),
  /** A person's decision waiting for the workflow to take it (retry failed items, ship, wipe). */
  decision: z.object({ wait: z.string(), value: z.string() }).optional(),
  /**
   * The recipient of the transfer's own key, signed by the ODT node that holds its identity
   * (core/model/transfer-key.ts): the export agent encrypts to it once the signature checks out.
   */
  key: signedStatementSchema.optional(),
  /** Optimistic-concurrency counter: every stored change increments it. */
  version: z.number().int().nonnegative(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export type Transfer = z.infer<typeof transferSchema>;

/** What a requester submits (request file, Slack modal); the rest is filled in by `core/`. */
export const transferRequestSchema = z.object({
  site: siteSchema,
  providerSite: siteSchema.default('provider'),
  requester: nameSchema,
  items: z
    .array(
      z.object({
        kind: z.enum(itemKinds),
        source: nameSchema,
        sizeBytes: z.number().int().nonnegative().optional(),
        target: itemTargetSchema,
      }),
    )
    .min(1, 'a transfer needs at least one item')
    .max(200, 'at most 200 items per transfer; split the move into several transfers'),
});
export type TransferRequest = z.input<typeof transferRequestSchema>;
