package erasure_test

import (
	"fmt"

	"github.com/sealpost/sealpost/internal/erasure"
)

// A sender cuts a 100-byte message into 32-byte chunks and sends one per
// message, numbered by its counter; the receiver loses chunks 0 and 2 and
// gets the rest out of order, with a duplicate. Any 4 distinct chunks do.
func Example() {
	msg := make([]byte, 100)
	for i := range msg {
		msg[i] = byte(i)
	}
	enc, err := erasure.NewEncoder(msg, 32)
	if err != nil {
		panic(err)
	}
	fmt.Println("data chunks:", enc.DataChunks())

	dec, err := erasure.NewDecoder(len(msg), 32)
	if err != nil {
		panic(err)
	}
	for _, i := range []uint32{5, 1, 5, 3, 4} { // 0 and 2 were lost
		done, err := dec.Add(i, enc.Chunk(i, nil))
		if err != nil {
			panic(err)
		}
		fmt.Println("chunk", i, "done:", done)
	}
	got, err := dec.Message()
	fmt.Println(err == nil && string(got) == string(msg))
	// Output:
	// data chunks: 4
	// chunk 5 done: false
	// chunk 1 done: false
	// chunk 5 done: false
	// chunk 3 done: false
	// chunk 4 done: true
	// true
}
