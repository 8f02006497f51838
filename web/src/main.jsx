// auth.js first: it wraps fetch before any other module can call it.
import './auth.js';
import 'katex/dist/katex.min.css';
import './style.css';
import { render } from 'preact';
import { App } from './App.jsx';

render(<App />, document.getElementById('app'));
