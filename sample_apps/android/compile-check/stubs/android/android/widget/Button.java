// Signature-only stub for compile checks (tests/test_sdk_compile.py), never packaged: the public signature as
// documented in the Android API reference (API level 35), bodies throw.
package android.widget;
public class Button extends TextView {
  public Button(android.content.Context context) { super(context); }
}
