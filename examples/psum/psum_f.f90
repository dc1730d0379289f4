! SPDX-License-Identifier: BSD-3-Clause
! psum_f.f90 - the parallel sum of IPython's MPI guide, in Fortran.
!
! Called from the C shim psum_f() in psum.c (built with PSUM_FORTRAN), which
! reads the plugin arguments and passes the array, its length and the
! engine's communicator as a Fortran MPI handle (cohort_call_comm_f).
subroutine psum_fortran(a, n, comm, total, ierr) bind(C, name="psum_fortran")
  use, intrinsic :: iso_c_binding, only: c_double, c_int, c_int64_t
  use mpi
  implicit none
  integer(c_int64_t), value, intent(in) :: n
  real(c_double), intent(in) :: a(n)
  integer(c_int), value, intent(in) :: comm
  real(c_double), intent(out) :: total
  integer(c_int), intent(out) :: ierr
  real(c_double) :: local
  integer :: ierror

  local = sum(a)
  call MPI_Allreduce(local, total, 1, MPI_DOUBLE_PRECISION, MPI_SUM, &
                     comm, ierror)
  ierr = ierror
end subroutine psum_fortran
