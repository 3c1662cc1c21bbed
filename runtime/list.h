/*
 * runtime/list.h: the one intrusive list and the one FIFO used everywhere.
 *
 * coil__list_t is a circular doubly linked list (O(1) unlink, used where
 * entries leave from the middle: waiters, all-tasks). coil__fifo_t is a
 * singly linked queue with a tail pointer (ready queues, inboxes). Both are
 * embedded in the objects they link; container_of gets the object back.
 */
#ifndef COIL_RUNTIME_LIST_H
#define COIL_RUNTIME_LIST_H

#include <stddef.h>
#include <stdbool.h>

#define coil__container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

typedef struct coil__list {
	struct coil__list *next, *prev;
} coil__list_t;

static inline void coil__list_init(coil__list_t *h)
{
	h->next = h->prev = h;
}

static inline bool coil__list_empty(const coil__list_t *h)
{
	return h->next == h;
}

/* Appends n at the tail of h. */
static inline void coil__list_push(coil__list_t *h, coil__list_t *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

/* Unlinks n and leaves it pointing at itself, so that a second unlink is
 * harmless. */
static inline void coil__list_del(coil__list_t *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}

/* Unlinks n and leaves it as it is, for a node nobody unlinks again. */
static inline void coil__list_del_once(coil__list_t *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
}

typedef struct coil__fnode {
	struct coil__fnode *next;
} coil__fnode_t;

typedef struct coil__fifo {
	coil__fnode_t *head;
	coil__fnode_t **tailp;
	size_t len;
} coil__fifo_t;

static inline void coil__fifo_init(coil__fifo_t *q)
{
	q->head = NULL;
	q->tailp = &q->head;
	q->len = 0;
}

static inline void coil__fifo_push(coil__fifo_t *q, coil__fnode_t *n)
{
	n->next = NULL;
	*q->tailp = n;
	q->tailp = &n->next;
	q->len++;
}

static inline coil__fnode_t *coil__fifo_pop(coil__fifo_t *q)
{
	coil__fnode_t *n = q->head;
	if (n) {
		q->head = n->next;
		if (!q->head)
			q->tailp = &q->head;
		q->len--;
	}
	return n;
}

/* Moves every node of src to the tail of dst. */
static inline void coil__fifo_splice(coil__fifo_t *dst, coil__fifo_t *src)
{
	if (!src->head)
		return;
	*dst->tailp = src->head;
	dst->tailp = src->tailp;
	dst->len += src->len;
	coil__fifo_init(src);
}

#endif
