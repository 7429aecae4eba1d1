package arcrest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"strings"
)

// node is one element of a response document. A-REX renders the same tree as XML or, for
// Accept: application/json, as JSON with the root element dropped, repeated elements as arrays and a
// single element as a plain value (the API 1.0 quirk every JSON client copes with).
type node struct {
	name     string
	attrs    []xml.Attr
	text     string
	children []*node
}

func el(name string, children ...*node) *node { return &node{name: name, children: children} }

func leaf(name, text string) *node { return &node{name: name, text: text} }

// add appends children and returns n.
func (n *node) add(children ...*node) *node {
	n.children = append(n.children, children...)
	return n
}

// addText appends a leaf unless text is empty.
func (n *node) addText(name, text string) *node {
	if text != "" {
		n.children = append(n.children, leaf(name, text))
	}
	return n
}

// writeXML renders n as an XML document.
func (n *node) writeXML(w io.Writer) error {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	if err := n.encode(enc); err != nil {
		return err
	}
	if err := enc.Flush(); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func (n *node) encode(enc *xml.Encoder) error {
	start := xml.StartElement{Name: xml.Name{Local: n.name}, Attr: n.attrs}
	if err := enc.EncodeToken(start); err != nil {
		return err
	}
	if n.text != "" {
		if err := enc.EncodeToken(xml.CharData(n.text)); err != nil {
			return err
		}
	}
	for _, c := range n.children {
		if err := c.encode(enc); err != nil {
			return err
		}
	}
	return enc.EncodeToken(start.End())
}

// jsonValue is the JSON form of n's content exactly as A-REX renders it (RenderToJson in
// nordugrid/arc src/services/a-rex/rest/rest.cpp): an element without child elements is its text alone,
// its attributes dropped (so a session listing's <file size="9">in1.dat</file> is "in1.dat", which
// pyarcrest and aCT join into download URLs); an element with children is an object of them, a name seen
// once as a value and a repeated one as an array, with its attributes (if any) under "_attributes".
func (n *node) jsonValue() any {
	if len(n.children) == 0 {
		return n.text
	}
	obj := map[string]any{}
	count := map[string]int{}
	for _, c := range n.children {
		count[c.name]++
	}
	for _, c := range n.children {
		v := c.jsonValue()
		if count[c.name] == 1 {
			obj[c.name] = v
			continue
		}
		arr, _ := obj[c.name].([]any)
		obj[c.name] = append(arr, v)
	}
	var attrs map[string]any
	for _, a := range n.attrs {
		if a.Name.Local == "xmlns" || a.Name.Space == "xmlns" { // a namespace declaration, not an attribute
			continue
		}
		if attrs == nil {
			attrs = map[string]any{}
		}
		attrs[a.Name.Local] = a.Value
	}
	if attrs != nil {
		obj["_attributes"] = attrs
	}
	return obj
}

// writeJSON renders n as JSON without its root element. Like A-REX, a root without children or text
// (an empty job list, delegation list or directory) is an empty body, which pyarcrest reads as "none"
// (json.loads("") raises with doc == "", its documented 1.0 case) where "{}" would fail its ["job"].
func (n *node) writeJSON(w io.Writer) error {
	v := n.jsonValue()
	if s, ok := v.(string); ok && s == "" {
		return nil
	}
	return json.NewEncoder(w).Encode(v)
}

// wantsJSON reports whether the client asked for JSON (pyarcrest, aCT); everyone else gets XML.
func wantsJSON(accept string) bool {
	return strings.Contains(strings.ToLower(accept), "application/json")
}
