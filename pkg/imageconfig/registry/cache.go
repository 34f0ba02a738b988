package registry

import "sync"

// cache is a map bounded to size entries; the oldest entry goes first.
// Image digests never change meaning, so entries need no expiry.
type cache[V any] struct {
	mu    sync.Mutex
	size  int
	m     map[string]V
	order []string
}

func newCache[V any](size int) *cache[V] {
	return &cache[V]{size: size, m: make(map[string]V, size)}
}

func (c *cache[V]) get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *cache[V]) put(k string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok {
		if len(c.order) >= c.size {
			delete(c.m, c.order[0])
			c.order = c.order[1:]
		}
		c.order = append(c.order, k)
	}
	c.m[k] = v
}
