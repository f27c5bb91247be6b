/* Proof, from a node, that the mesa-injector webhook answers.
 *
 * The MutatingWebhookConfiguration has failurePolicy: Ignore, so a webhook
 * nobody can reach admits every virt-launcher pod unmutated, silently, and
 * the display tests then fail far from the cause. With webhook.deploy: url
 * the API server calls webhook.url, an address on the host; the first node
 * of the state runs curl against URL/healthz over ssh (with the CA vgpuenv
 * made for it, when there is one) before the suite starts. */
#pragma once

struct run_ctx;
struct state;

/* 0 when it answered 200, or when there is nothing to prove (no url
 * webhook, no node in the state, no curl on the node: said in a notice);
 * -EHOSTUNREACH (logged with curl's message and the remedy) when it did
 * not answer. */
int e2e_check_webhook_from_node(struct run_ctx *ctx, struct state *st);
