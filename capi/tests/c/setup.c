/* setup.c: io_setup, io_destroy, io_queue_init, io_queue_release and their errors. */
#include "check.h"

int main(void)
{
	io_context_t ctx = check_begin(4);
	CHECK("io_setup gives a context", ctx != 0);
	EXPECT("io_destroy", io_destroy(ctx), 0);
	EXPECT("io_destroy of a destroyed context: EINVAL", io_destroy(ctx), -EINVAL);
	EXPECT("io_destroy(NULL): EINVAL", io_destroy(NULL), -EINVAL);

	io_context_t busy = 0;
	EXPECT("io_setup(1)", io_setup(1, &busy), 0);
	io_context_t again = busy;
	EXPECT("io_setup over a non-zero context: EINVAL", io_setup(1, &again), -EINVAL);
	CHECK("io_setup leaves a non-zero context alone", again == busy);
	io_context_t zero = 0;
	EXPECT("io_setup(0): EINVAL", io_setup(0, &zero), -EINVAL);
	EXPECT("io_setup with a NULL ctxp: EFAULT", io_setup(1, NULL), -EFAULT);
	EXPECT("io_queue_release", io_queue_release(busy), 0);
	EXPECT("io_queue_release of a released context: EINVAL", io_queue_release(busy), -EINVAL);

	/* io_queue_init clears *ctxp itself, checks maxevents without a system call. */
	io_context_t q = (io_context_t)(unsigned long)0x1000;
	EXPECT("io_queue_init over garbage", io_queue_init(8, &q), 0);
	CHECK("io_queue_init gives a context", q != 0 && q != (io_context_t)(unsigned long)0x1000);
	io_context_t none = 0;
	EXPECT("io_queue_init(0): EINVAL", io_queue_init(0, &none), -EINVAL);
	EXPECT("io_queue_init(-5): EINVAL", io_queue_init(-5, &none), -EINVAL);
	CHECK("io_queue_init(0) leaves *ctxp alone", none == 0);
	EXPECT("io_queue_release", io_queue_release(q), 0);

	/* Many contexts at once, released in another order. */
	io_context_t many[16] = {0};
	int made = 0;
	for (int i = 0; i < 16; i++)
		if (io_setup(2, &many[i]) == 0)
			made++;
	CHECK("16 contexts at once", made == 16);
	int released = 0;
	for (int i = 15; i >= 0; i -= 2)
		released += io_destroy(many[i]) == 0;
	for (int i = 0; i < 16; i += 2)
		released += io_destroy(many[i]) == 0;
	CHECK("16 contexts destroyed", released == 16);
	return check_end();
}
