package yamux

import (
	"io"
	"sync"
)

// recvBuffer holds a stream's received and unread data in chunks taken
// from pools of 1 to 64 KiB, a frame's bytes filling the room left in the
// last chunk first. A chunk is returned as soon as it is read, so the memory a
// stream holds follows what is unread: a drained stream holds none, where a
// bytes.Buffer keeps its peak size until the stream is gone.
type recvBuffer struct {
	chunks []recvChunk
	size   int // unread bytes
}

type recvChunk struct {
	buf  *[]byte // from chunkPools, or nil
	data []byte  // the unread part
}

const (
	minPooledChunk = 1 << 10
	maxPooledChunk = 64 << 10
)

// chunkPools[i] holds buffers of minPooledChunk<<i bytes.
var chunkPools [7]sync.Pool

func poolIndex(n int) int {
	i := 0
	for size := minPooledChunk; size < n; size <<= 1 {
		i++
	}
	return i
}

func getChunk(n int) recvChunk {
	i := poolIndex(n)
	bp, _ := chunkPools[i].Get().(*[]byte)
	if bp == nil {
		b := make([]byte, minPooledChunk<<i)
		bp = &b
	}
	return recvChunk{buf: bp, data: (*bp)[:0]}
}

func putChunk(c recvChunk) {
	if c.buf != nil {
		chunkPools[poolIndex(cap(*c.buf))].Put(c.buf)
	}
}

// Len is the number of unread bytes.
func (b *recvBuffer) Len() int { return b.size }

// Cap is the number of bytes held, read or not.
func (b *recvBuffer) Cap() int {
	n := 0
	for _, c := range b.chunks {
		n += cap(c.data)
	}
	return n
}

// readFrom appends n bytes read from r, into the room left in the last
// chunk, then into pooled chunks of at most maxPooledChunk bytes.
func (b *recvBuffer) readFrom(r io.Reader, n int) (int, error) {
	total := 0
	if k := len(b.chunks); k > 0 && n > 0 {
		last := &b.chunks[k-1]
		if room := cap(last.data) - len(last.data); room > 0 {
			m, err := io.ReadFull(r, last.data[len(last.data):len(last.data)+minInt(room, n)])
			last.data = last.data[:len(last.data)+m]
			b.size += m
			total += m
			n -= m
			if err != nil {
				return total, err
			}
		}
	}
	for n > 0 {
		c := getChunk(minInt(n, maxPooledChunk))
		m, err := io.ReadFull(r, c.data[:minInt(n, cap(c.data))])
		c.data = c.data[:m]
		if m == 0 {
			putChunk(c)
		} else {
			b.chunks = append(b.chunks, c)
		}
		b.size += m
		total += m
		n -= m
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// push appends a chunk holding unread data.
func (b *recvBuffer) push(c recvChunk) {
	b.chunks = append(b.chunks, c)
	b.size += len(c.data)
}

// Read reads unread bytes into p, returning the chunks it empties.
func (b *recvBuffer) Read(p []byte) int {
	n := 0
	for n < len(p) && len(b.chunks) > 0 {
		c := &b.chunks[0]
		m := copy(p[n:], c.data)
		n += m
		c.data = c.data[m:]
		if len(c.data) == 0 {
			putChunk(*c)
			b.chunks[0] = recvChunk{}
			b.chunks = b.chunks[1:]
		}
	}
	b.size -= n
	if len(b.chunks) == 0 {
		b.chunks = b.chunks[:0:0] // let the array go: an idle stream holds nothing
	}
	return n
}

// reset drops all unread data and returns the number of bytes dropped.
func (b *recvBuffer) reset() int {
	n := b.size
	for i, c := range b.chunks {
		putChunk(c)
		b.chunks[i] = recvChunk{}
	}
	b.chunks = nil
	b.size = 0
	return n
}

func minInt(a, b int) int {
	if a < b {
		return a
	}
	return b
}
